"""The slurm node provider against a real Slurm (.ci/slurm-up: a controller and three
slurmd on this host): nodes are Slurm jobs running real agents against the test database."""

from __future__ import annotations

import subprocess

import psutil
import pytest
from django.conf import settings

from tasks.models import Attempt, ComputeNode, Task
from tasks.operations.pools import add_pool
from tasks.providers.base import ProviderError, RunningNode
from tasks.providers.environment import database_url
from tasks.providers.slurm import SlurmProvider
from tests.agents import wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory
from tests.slurm import node_states, squeue

pytestmark = pytest.mark.slurm


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(), spec={"id": "slurmy", "vmSize": "slurm"})


# Root: these tasks write in the test's tmp_path (0700).
ADMIN = {"autoUser": {"elevationLevel": "admin"}}


def node_addr(slurm_node: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "node", "-o", slurm_node], capture_output=True, text=True, check=True
    ).stdout
    return next(word.split("=", 1)[1] for word in out.split() if word.startswith("NodeAddr="))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def read(path) -> str | None:
    try:
        return open(path).read().strip() or None
    except OSError:
        return None


def test_two_nodes_started_through_the_provider_register_and_run_tasks(slurm, pool):
    handles = [slurm.launch(pool, "s1"), slurm.launch(pool, "s2")]
    nodes = slurm.wait_idle(pool, "s1", "s2")

    places = [slurm.slurm_node(handle) for handle in handles]
    assert len(set(places)) == 2  # --exclusive: one agent per Slurm node
    # Each node reports the address Slurm reaches its Slurm node at.
    assert {node.node_id: node.ip_address for node in nodes} == {
        "s1": node_addr(places[0]),
        "s2": node_addr(places[1]),
    }
    job = make_job(pool.account, pool)
    tasks = [add(job, f"t{i}", "/bin/sh -c 'sleep 1'") for i in range(4)]
    wait_for(
        lambda: all(fresh(t).state == Task.State.COMPLETED for t in tasks),
        timeout=30,
        message="the tasks to complete",
    )
    assert {t.result for t in tasks} == {"success"}
    assert {t.node_name for t in tasks} == {"s1", "s2"}


def test_a_two_instance_task_spans_two_slurm_nodes(slurm, pool, tmp_path):
    handles = {node_id: slurm.launch(pool, node_id) for node_id in ("m1", "m2")}
    nodes = {n.node_id: n for n in slurm.wait_idle(pool, "m1", "m2")}
    seen = tmp_path / "instances"
    task = add(
        make_job(pool.account, pool),
        "mpi",
        "/bin/sh -c 'echo primary on $AZ_BATCH_NODE_ID'",
        userIdentity=ADMIN,
        multiInstanceSettings={
            "numberOfInstances": 2,
            "coordinationCommandLine": f"/bin/sh -c 'echo $AZ_BATCH_NODE_ID $AZ_BATCH_HOST_LIST >> {seen}'",
        },
    )
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message="the multi-instance task",
    )

    assert task.result == "success"
    assert len({slurm.slurm_node(h) for h in handles.values()}) == 2
    lines = sorted(seen.read_text().split("\n")[:-1])
    primary = task.node_name
    hosts = [nodes[primary].ip_address] + [
        n.ip_address for n in nodes.values() if n.node_id != primary
    ]
    assert len(set(hosts)) == 2  # two Slurm nodes, two addresses, the primary's first
    assert lines == [f"m1 {','.join(hosts)}", f"m2 {','.join(hosts)}"]


def test_a_graceful_stop_requeues_the_running_task_and_the_job_ends_by_itself(slurm, pool):
    handle = slurm.launch(pool, "g1")
    agent_pid = slurm.wait_idle(pool, "g1")[0].agent_pid
    task = add(make_job(pool.account, pool), "long", "/bin/sh -c 'echo $$ > pid; exec sleep 60'")
    wait_for(
        lambda: fresh(task).state == Task.State.RUNNING, timeout=15, message="the task to start"
    )
    pid = int(
        wait_for(lambda: read(f"{task.task_root_directory}/wd/pid"), message="the task's pid")
    )

    slurm.provider.stop(handle, graceful=True)
    wait_for(lambda: not slurm.provider.running(), timeout=30, message="the node's job to end")

    task = fresh(task)
    assert (task.state, task.requeue_count, task.failure_info) == (Task.State.ACTIVE, 1, None)
    assert list(Attempt.objects.filter(task=task).values_list("outcome", flat=True)) == ["requeued"]
    assert ComputeNode.objects.get(node_id="g1").state == ComputeNode.State.OFFLINE
    assert not alive(pid) and not alive(agent_pid)
    assert slurm.state(handle) == "COMPLETED"  # the agent exited 0: Slurm killed nothing


def test_a_hard_stop_kills_the_node_and_whatever_its_tasks_left_behind(slurm, pool):
    handle = slurm.launch(pool, "h1")
    agent_pid = slurm.wait_idle(pool, "h1")[0].agent_pid
    # A daemon that left the task's session and process tree: only the job's cgroup holds it.
    task = add(
        make_job(pool.account, pool),
        "daemon",
        "/bin/sh -c '(setsid sleep 300 & echo $! > daemon.pid); exec sleep 300'",
    )
    pid = int(
        wait_for(
            lambda: (
                read(f"{fresh(task).task_root_directory}/wd/daemon.pid")
                if fresh(task).task_root_directory
                else None
            ),
            timeout=15,
            message="the daemon's pid",
        )
    )
    assert alive(pid)

    slurm.provider.stop(handle, graceful=False)
    wait_for(
        lambda: not alive(pid) and not alive(agent_pid),
        timeout=15,
        message="the node's processes to die",
    )
    wait_for(
        lambda: slurm.state(handle) == "CANCELLED", timeout=15, message="the job to be cancelled"
    )


def test_running_of_a_fresh_provider_finds_this_instances_nodes_and_no_one_elses(slurm, pool):
    first, second = slurm.launch(pool, "r1"), slurm.launch(pool, "r2")
    account = pool.account.name

    found = sorted(SlurmProvider().running(), key=lambda n: n.node_id)
    # Whether each job is still queued is Slurm's to say (pending is tested below).
    assert found == [
        RunningNode(account, "slurmy", "r1", first, pending=found[0].pending),
        RunningNode(account, "slurmy", "r2", second, pending=found[1].pending),
    ]
    assert SlurmProvider(instance="another-batchsite").running() == []


def test_start_again_returns_the_queued_or_running_job_and_a_pending_node_is_pending(slurm, pool):
    handles = [slurm.launch(pool, f"q{i}") for i in range(4)]  # three Slurm nodes: one waits
    try:
        # Slurm starts them within a second here; a loaded CI machine once took over 30 s.
        wait_for(
            lambda: sum(slurm.state(h) == "RUNNING" for h in handles[:3]) == 3,
            timeout=60,
            message="three nodes to run",
        )
    except AssertionError as late:
        jobs = squeue("-j", ",".join(handles), "-o", "%i|%T|%r|%N")
        raise AssertionError(f"{late}: jobs {jobs}, nodes {node_states()}") from None
    assert slurm.state(handles[3]) == "PENDING"
    assert [slurm.launch(pool, f"q{i}") for i in range(4)] == handles
    assert {n.node_id: n.pending for n in slurm.provider.running()} == {
        "q0": False,
        "q1": False,
        "q2": False,
        "q3": True,
    }

    slurm.provider.stop(handles[3], graceful=True)  # a pending job takes no signal: it is cancelled
    wait_for(
        lambda: slurm.state(handles[3]) == "CANCELLED",
        timeout=15,
        message="the pending job to be cancelled",
    )
    assert "q3" not in {n.node_id for n in slurm.provider.running()}


def test_a_node_lost_in_slurm_is_lost_in_batchsite_and_its_task_completes_elsewhere(
    slurm, pool, settings, tmp_path
):
    settings.BATCHSITE_NODE_LOST_SECONDS, settings.BATCHSITE_NODE_HEARTBEAT_SECONDS = 2.0, 0.3
    doomed = slurm.launch(pool, "doomed")
    slurm.wait_idle(pool, "doomed")
    ran = tmp_path / "ran"
    script = f"echo $AZ_BATCH_NODE_ID >> {ran}; if [ $AZ_BATCH_NODE_ID = doomed ]; then exec sleep 300; fi; sleep 0.5"
    task = add(make_job(pool.account, pool), "t1", f"/bin/sh -c '{script}'", userIdentity=ADMIN)
    wait_for(
        lambda: fresh(task).state == Task.State.RUNNING and ran.exists(),
        timeout=15,
        message="the task",
    )
    slurm.launch(pool, "survivor")
    slurm.wait_idle(pool, "survivor")

    lost = slurm.slurm_node(doomed)
    slurm.kill_slurm_node(lost)  # its slurmd, slurmstepd, agent and task, all at once
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, timeout=30, message="the requeued task"
    )
    assert (task.result, task.node_name, task.requeue_count) == ("success", "survivor", 1)
    assert ran.read_text().split() == ["doomed", "survivor"]
    assert ComputeNode.objects.get(node_id="doomed").state == ComputeNode.State.OFFLINE

    # Slurm finds out too (SlurmdTimeout): the node is down, its job failed and is no
    # longer running, so a reconciler would start the node again elsewhere.
    wait_for(
        lambda: node_states()[lost] == "down*",
        timeout=90,
        interval=0.5,
        message=f"{lost} to be down",
    )
    wait_for(
        lambda: doomed not in {n.handle for n in slurm.provider.running()},
        timeout=30,
        message="the lost node's job to end",
    )
    assert slurm.state(doomed) == "NODE_FAIL"
    slurm.restart_slurm_node(lost)  # ReturnToService=2: back as soon as its slurmd registers
    wait_for(lambda: node_states()[lost] == "idle", timeout=30, message=f"{lost} to be back")


def test_the_agent_gets_the_environment_it_needs_and_none_of_the_secrets(slurm, pool, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "web-tier-secret")
    monkeypatch.setenv("BATCHSITE_ACCOUNT_KEY", "YWNjb3VudC1rZXk=")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "storage-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "storage-secret")
    monkeypatch.setenv("BATCHSITE_ACCOUNT_URL", "http://batch.example:8000")
    slurm.launch(pool, "e1", options={"export": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]})
    node = slurm.wait_idle(pool, "e1")[0]

    env = psutil.Process(node.agent_pid).environ()
    assert env["DATABASE_URL"] == database_url()  # the test database, as this process sees it
    assert env["BATCHSITE_DATA_DIR"] == str(settings.DATA_DIR)
    assert env["BATCHSITE_NODE_POLL_SECONDS"] == str(settings.BATCHSITE_NODE_POLL_SECONDS)
    assert env["BATCHSITE_NODE_IP"] == node.ip_address
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        "storage-id",
        "storage-secret",
    )
    assert "DJANGO_SECRET_KEY" not in env and "BATCHSITE_ACCOUNT_KEY" not in env
    assert (
        env["BATCHSITE_ACCOUNT_URL"] == "http://batch.example:8000"
    )  # what token-holding tasks call
    # Without a log_dir option the agent's output goes under the data directory.
    log = settings.DATA_DIR / "slurm" / pool.account.name / "slurmy" / "e1.log"
    assert "node e1 of pool slurmy: 1 slots" in log.read_text()


def test_a_submission_slurm_refuses_is_a_provider_error_with_slurms_reason(slurm, pool):
    with pytest.raises(ProviderError) as refused:
        slurm.launch(pool, "x1", options={"partition": "no-such-partition"})
    assert refused.value.code == "AllocationFailed"
    assert "invalid partition" in refused.value.message.lower()


def test_stopping_a_job_that_is_over_or_unknown_is_not_an_error(slurm, pool):
    handle = slurm.launch(pool, "over")
    slurm.wait_idle(pool, "over")
    slurm.provider.stop(handle, graceful=False)
    wait_for(lambda: slurm.state(handle) == "CANCELLED", timeout=15, message="the job to end")
    for graceful in (True, False):
        slurm.provider.stop(handle, graceful=graceful)
        slurm.provider.stop("99999999", graceful=graceful)


def test_a_plain_scancel_from_outside_requeues_the_running_task_within_killwait(
    slurm, pool, settings
):
    # .ci/slurm-up's KillWait is 10 s; Slurm kills at least ~5 s after a cancel even with a
    # shorter one, so a grace of 6 s tells the two apart.
    settings.BATCHSITE_NODE_KILL_GRACE_SECONDS = 6.0
    handle = slurm.launch(pool, "p1")
    slurm.wait_idle(pool, "p1")
    # A task that ignores SIGTERM holds its agent for the whole grace before SIGKILL: the
    # agent still requeues it because Slurm's KillWait is longer.
    task = add(
        make_job(pool.account, pool),
        "stubborn",
        "/bin/sh -c 'trap \"\" TERM; echo $$ > pid; while :; do sleep 0.1; done'",
    )
    wait_for(
        lambda: fresh(task).state == Task.State.RUNNING, timeout=15, message="the task to start"
    )
    wait_for(lambda: read(f"{task.task_root_directory}/wd/pid"), message="the task's pid")

    subprocess.run(["scancel", handle], check=True, timeout=30)
    wait_for(lambda: not slurm.provider.running(), timeout=30, message="the node's job to end")
    task = fresh(task)
    assert (task.state, task.requeue_count, task.failure_info) == (Task.State.ACTIVE, 1, None)
    assert slurm.state(handle) == "CANCELLED"
