"""Node loss with real agents: SIGKILL, restart, SIGTERM, and agents racing on PostgreSQL."""

from __future__ import annotations

from collections import Counter

import psutil
import pytest
from django.db import connection

from tasks.models import Attempt, ComputeNode, Task
from tasks.operations.pools import add_pool
from tests.agents import assert_each_ran_once, logged_spec, wait_for
from tests.execution import add, make_job
from tests.factories import AccountFactory

# A node whose heartbeat stops is lost after 2 s here (30 s by default).
LOSSY = {"BATCHSITE_NODE_LOST_SECONDS": "2", "BATCHSITE_NODE_HEARTBEAT_SECONDS": "0.3"}


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(), spec={"id": "faulty", "vmSize": "local"})


def task_state(task: Task) -> Task:
    task.refresh_from_db()
    return task


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_task_of_an_agent_killed_mid_run_is_requeued_and_completes_on_the_other_node(
    agents, pool, tmp_path
):
    agents.start(pool, "doomed", slots=1, **LOSSY)
    ran, pids = tmp_path / "ran", tmp_path / "pids"
    # On the doomed node the task would run for a minute; on the other it is quick.
    script = (
        f"echo $AZ_BATCH_NODE_ID >> {ran}; echo $$ >> {pids}; "
        "if [ $AZ_BATCH_NODE_ID = doomed ]; then exec sleep 60; fi; sleep 0.5"
    )
    task = add(
        make_job(pool.account, pool),
        "t1",
        f"/bin/sh -c '{script}'",
        userIdentity={"autoUser": {"elevationLevel": "admin"}},
    )  # root: it writes in the test's tmp_path
    wait_for(
        lambda: task_state(task).state == Task.State.RUNNING and pids.exists(),
        message="the task to start",
    )
    orphan = int(pids.read_text().split()[0])
    agents.start(pool, "survivor", slots=1, **LOSSY)
    agents.kill("doomed")
    assert alive(orphan)  # nothing stops a task process when its agent is SIGKILLed...

    wait_for(
        lambda: task_state(task).state == Task.State.COMPLETED,
        timeout=20,
        message="the requeued task",
    )
    assert (task.result, task.node_name, task.requeue_count) == ("success", "survivor", 1)
    assert ran.read_text().split() == ["doomed", "survivor"]
    assert not alive(
        orphan
    )  # ...but the agent that found its node lost, on the same host, killed it
    assert ComputeNode.objects.get(node_id="doomed").state == ComputeNode.State.OFFLINE
    assert list(
        Attempt.objects.filter(task=task).order_by("number").values_list("node_name", "outcome")
    ) == [("doomed", "requeued"), ("survivor", "succeeded")]


def test_a_restarted_agent_kills_what_its_killed_predecessor_left_running(agents, pool):
    agents.start(pool, "phoenix", slots=1)
    task = add(make_job(pool.account, pool), "t1", "/bin/sh -c 'sleep 60 & echo $! > bg.pid; wait'")
    wait_for(lambda: task_state(task).state == Task.State.RUNNING, message="the task to start")
    pid_file = f"{task.task_root_directory}/wd/bg.pid"
    pid = int(wait_for(lambda: _read(pid_file), message="the background pid"))
    agents.kill("phoenix")
    assert alive(pid)  # a background process survives its agent's SIGKILL...

    agents.start(pool, "phoenix", slots=1, clean=False)
    wait_for(
        lambda: not alive(pid), timeout=5, message="the orphan to be killed"
    )  # ...until it restarts
    # The agent kills the orphans first and requeues their attempts after: wait for both.
    wait_for(
        lambda: task_state(task).requeue_count == 1, timeout=10, message="the task to be requeued"
    )


def test_sigterm_stops_the_running_tasks_and_requeues_them(agents, pool):
    agents.start(pool, "stopping", slots=1)
    task = add(make_job(pool.account, pool), "t1", "/bin/sh -c 'echo $$ > pid; exec sleep 60'")
    wait_for(lambda: task_state(task).state == Task.State.RUNNING, message="the task to start")
    pid = int(wait_for(lambda: _read(f"{task.task_root_directory}/wd/pid"), message="the pid"))
    assert agents.stop("stopping") == 0
    assert not alive(pid)
    task = task_state(task)
    assert (task.state, task.requeue_count) == (Task.State.ACTIVE, 1)
    assert ComputeNode.objects.get(node_id="stopping").state == ComputeNode.State.OFFLINE


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="racing agents need PostgreSQL (DATABASE_URL)"
)
def test_two_agents_racing_for_a_thousand_tasks_run_each_exactly_once(agents, pool, tmp_path):
    from tasks.operations.tasks import add_task_collection

    log = tmp_path / "ran"
    job = make_job(pool.account, pool)
    for start in range(0, 1000, 100):
        specs = [logged_spec(i, log) for i in range(start, start + 100)]
        add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
    for node_id in ("racer-1", "racer-2"):
        agents.start(pool, node_id, slots=8, wait=False)
    wait_for(
        lambda: job.__class__.objects.get(pk=job.pk).completed_count == 1000,
        timeout=90,
        interval=0.2,
        message="1000 tasks to complete",
    )

    by_node = assert_each_ran_once(job, log, 1000)
    assert Task.objects.filter(job=job, result="success").count() == 1000
    assert set(by_node) == {"racer-1", "racer-2"}  # both took part in the race


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="racing agents need PostgreSQL (DATABASE_URL)"
)
def test_four_agents_racing_while_terminates_and_deletes_land_mid_claim_run_each_task_at_most_once(
    agents, pool, tmp_path
):
    from tasks.errors import BatchError
    from tasks.models import Job
    from tasks.operations.counts import recount_job
    from tasks.operations.tasks import add_task_collection, delete_task, terminate_task

    log, total = tmp_path / "ran", 600
    job = make_job(pool.account, pool)
    for start in range(0, total, 100):
        specs = [logged_spec(i, log, then="; sleep 0.02") for i in range(start, start + 100)]
        add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
    for i in range(4):
        agents.start(pool, f"racer-{i + 1}", slots=2, wait=False)
    # Each request hits the task at the head of the queue, the one the agents claim now
    # (terminate), or the newest running one (delete): both land while claims and
    # reports of the same rows are in flight.
    terminated, deleted = set(), set()
    wait_for(
        lambda: Task.objects.filter(job=job, state=Task.State.RUNNING).exists(),
        timeout=60,
        message="the first claims",
    )
    for i in range(80):
        if i % 2 == 0:
            task = (
                Task.objects.filter(job=job, state=Task.State.ACTIVE)
                .order_by("creation_time", "pk")
                .first()
            )
        else:
            task = (
                Task.objects.filter(job=job, state=Task.State.RUNNING)
                .order_by("-state_transition_time")
                .first()
            )
        if task is None:
            continue  # none in that state at this instant: the next request tries again
        try:
            if i % 2 == 0:
                terminate_task(task)
                terminated.add(task.task_id)
            else:
                delete_task(task)
                deleted.add(task.task_id)
        except BatchError:
            pass  # it completed (or went) first
    wait_for(
        lambda: Job.objects.get(pk=job.pk).completed_count == total - len(deleted),
        timeout=120,
        interval=0.2,
        message="every task left to complete",
    )

    runs = Counter(log.read_text().split())
    assert set(runs.values()) == {1}  # nothing ran twice
    assert set(runs) >= {f"t{i}" for i in range(total)} - terminated - deleted
    per_task = Counter(Attempt.objects.filter(job=job).values_list("task__task_id", flat=True))
    assert set(per_task.values()) == {1}
    assert not Attempt.objects.filter(job=job, outcome=Attempt.Outcome.RUNNING).exists()
    assert not Task.objects.filter(job=job, task_id__in=deleted).exists()
    assert terminated and deleted
    assert {
        (t.state, t.result, t.failure_info["code"])
        for t in Task.objects.filter(job=job, task_id__in=terminated)
    } == {("completed", "failure", "TaskEnded")}
    assert Task.objects.filter(job=job, result="success").count() == total - len(terminated) - len(
        deleted
    )
    fields = [
        f"{b}_{k}"
        for b in ("active", "running", "completed", "succeeded", "failed")
        for k in ("count", "slots")
    ]
    maintained = Job.objects.filter(pk=job.pk).values(*fields).get()
    recount_job(job)
    assert (
        maintained == Job.objects.filter(pk=job.pk).values(*fields).get()
    )  # the counters are exact
    by_node = Counter(Attempt.objects.filter(job=job).values_list("node_name", flat=True))
    assert set(by_node) == {f"racer-{i + 1}" for i in range(4)}


def _read(path: str) -> str | None:
    try:
        text = open(path).read().strip()
    except OSError:
        return None
    return text or None
