"""The pool's start task with real agents: its directory and environment, retries,
waitForSuccess holding the node, starttaskfailed, and low-priority nodes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings

from tasks.models import ComputeNode, Task
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.conftest import BatchTestClient
from tests.execution import add, make_job
from tests.factories import AccountFactory

# Root: a start task that waits for a gate in the test's tmp_path (0700) must reach it.
ADMIN = {"autoUser": {"elevationLevel": "admin"}}


def make_pool(pool_id: str, **start_task) -> object:
    spec = {"id": pool_id, "vmSize": "local"}
    if start_task:
        spec["startTask"] = start_task
    return add_pool(AccountFactory(), spec=spec)


def node(pool, node_id: str) -> ComputeNode:
    return ComputeNode.objects.get(pool=pool, node_id=node_id)


def fresh(task: Task) -> Task:
    task.refresh_from_db()
    return task


def sh(script: str) -> str:
    return f"/bin/sh -c '{script}'"


def env_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_start_task_runs_in_startup_with_its_environment_and_tasks_see_what_it_left(
    agents, transactional_db
):
    pool = make_pool(
        "st-env",
        commandLine=sh("env > env.txt; echo ready > $AZ_BATCH_NODE_SHARED_DIR/tool; echo hi"),
        environmentSettings=[{"name": "TOOL_VERSION", "value": "1.2"}],
    )
    agents.start(pool, "n1", slots=1)
    n = node(pool, "n1")
    root = Path(n.root_dir)
    assert n.start_task_info["state"] == "completed" and n.start_task_info["result"] == "success"
    assert n.start_task_info["exitCode"] == 0 and n.start_task_info["retryCount"] == 0
    assert (root / "startup" / "stdout.txt").read_text() == "hi\n"
    env = env_of(root / "startup" / "wd" / "env.txt")
    assert env["TOOL_VERSION"] == "1.2"
    assert env["AZ_BATCH_TASK_DIR"] == env["AZ_BATCH_NODE_STARTUP_DIR"] == str(root / "startup")
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(root / "startup" / "wd")
    assert (
        env["AZ_BATCH_NODE_ID"],
        env["AZ_BATCH_POOL_ID"],
        env["AZ_BATCH_NODE_IS_DEDICATED"],
    ) == ("n1", "st-env", "true")
    assert env["AZ_BATCH_NODE_ROOT_DIR"] == str(root) and env["AZ_BATCH_NODE_SHARED_DIR"] == str(
        root / "shared"
    )
    assert (
        "AZ_BATCH_JOB_ID" not in env and "AZ_BATCH_TASK_ID" not in env
    )  # "all tasks except start task"
    assert "DATABASE_URL" not in env

    task = add(
        make_job(pool.account, pool),
        "t1",
        sh("cat $AZ_BATCH_NODE_SHARED_DIR/tool; echo $AZ_BATCH_NODE_STARTUP_DIR"),
    )
    wait_for(lambda: fresh(task).state == Task.State.COMPLETED, message="the task")
    assert (
        Path(task.task_root_directory, "stdout.txt").read_text() == f"ready\n{root / 'startup'}\n"
    )


def test_a_failing_start_task_is_retried_up_to_max_task_retry_count(agents, transactional_db):
    # Fails twice, then succeeds: its wd/ keeps the count across tries.
    pool = make_pool(
        "st-retry",
        maxTaskRetryCount=2,
        commandLine=sh("echo x >> tries; [ $(wc -l < tries) -ge 3 ]"),
    )
    agents.start(pool, "n1", slots=1)
    info = node(pool, "n1").start_task_info
    assert (info["result"], info["retryCount"], info["exitCode"]) == ("success", 2, 0)
    assert info["lastRetryTime"] == info["startTime"]


def test_wait_for_success_holds_the_node_until_the_start_task_succeeds(
    agents, transactional_db, tmp_path
):
    gate = tmp_path / "gate"
    pool = make_pool(
        "st-wait",
        waitForSuccess=True,
        commandLine=sh(f"while [ ! -e {gate} ]; do sleep 0.05; done"),
        userIdentity=ADMIN,
    )
    agents.start(pool, "n1", slots=1, ready=("waitingforstarttask",))
    task = add(make_job(pool.account, pool), "t1")
    time.sleep(1.0)  # several poll intervals: a node that took work would have claimed it
    assert node(pool, "n1").state == "waitingforstarttask"
    assert node(pool, "n1").start_task_info["state"] == "running"
    assert fresh(task).state == Task.State.ACTIVE
    gate.touch()
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, message="the task after the start task"
    )
    assert node(pool, "n1").start_task_info["result"] == "success"


def test_a_start_task_that_keeps_failing_leaves_the_node_starttaskfailed_and_it_claims_nothing(
    agents, transactional_db
):
    pool = make_pool("st-fail", maxTaskRetryCount=1, commandLine=sh("echo broken >&2; exit 7"))
    agents.start(pool, "n1", slots=1, ready=("starttaskfailed",))
    n = node(pool, "n1")
    assert n.start_task_info["state"] == "completed"
    assert (n.start_task_info["exitCode"], n.start_task_info["retryCount"]) == (7, 1)
    assert n.start_task_info["failureInfo"]["code"] == "FailureExitCode"
    assert (Path(n.root_dir) / "startup" / "stderr.txt").read_text() == "broken\n"
    task = add(make_job(pool.account, pool), "t1")
    time.sleep(1.0)
    assert fresh(task).state == Task.State.ACTIVE
    assert node(pool, "n1").state == "starttaskfailed"  # the heartbeat leaves it so


def test_a_start_task_whose_program_does_not_exist_fails_without_retry(agents, transactional_db):
    pool = make_pool("st-missing", maxTaskRetryCount=3, commandLine="no-such-program --now")
    agents.start(pool, "n1", slots=1, ready=("starttaskfailed",))
    info = node(pool, "n1").start_task_info
    assert (info["failureInfo"]["code"], info["retryCount"]) == ("CommandProgramNotFound", 0)


def test_without_wait_for_success_tasks_run_while_the_start_task_does(
    agents, transactional_db, tmp_path
):
    gate = tmp_path / "gate"
    pool = make_pool(
        "st-nowait",
        waitForSuccess=False,
        commandLine=sh(f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 3"),
        userIdentity=ADMIN,
    )
    agents.start(pool, "n1", slots=1)
    task = add(make_job(pool.account, pool), "t1")
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        message="the task while the start task runs",
    )
    assert node(pool, "n1").start_task_info["state"] == "running"
    gate.touch()
    wait_for(
        lambda: node(pool, "n1").start_task_info["state"] == "completed",
        message="the start task's end",
    )
    assert node(pool, "n1").start_task_info["result"] == "failure"
    after = add(make_job(pool.account, pool, "job2"), "t2")  # a failure does not stop the node
    wait_for(
        lambda: fresh(after).state == Task.State.COMPLETED,
        message="a task after the start task failed",
    )


def test_a_low_priority_node_is_not_dedicated_and_its_tasks_know_it(agents, transactional_db):
    pool = make_pool("spot")
    agents.start(pool, "spot-1", slots=1, low_priority=True)
    assert node(pool, "spot-1").is_dedicated is False
    task = add(make_job(pool.account, pool), "t1", sh("echo $AZ_BATCH_NODE_IS_DEDICATED"))
    wait_for(lambda: fresh(task).state == Task.State.COMPLETED, message="the task")
    assert Path(task.task_root_directory, "stdout.txt").read_text() == "false\n"


def test_an_agent_reports_cpu_and_memory_in_its_heartbeat(agents, transactional_db):
    pool = make_pool("samples")
    agents.start(pool, "n1", slots=1)
    task = add(
        make_job(pool.account, pool),
        "busy",
        sh("end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do :; done"),
    )
    wait_for(lambda: fresh(task).state == Task.State.RUNNING, message="the busy task")
    wait_for(
        lambda: (node(pool, "n1").cpu_percent or 0) > 5,
        timeout=10,
        message="a CPU sample of the busy task",
    )
    n = node(pool, "n1")
    assert n.memory_bytes > 10 * 1024 * 1024  # the agent itself (a Django process) and the task
    assert n.cpu_percent <= 100


def test_the_start_tasks_output_is_read_through_the_node_files_api(agents, transactional_db):
    pool = make_pool("st-files", commandLine=sh("echo from the start task; echo oops >&2"))
    agents.start(pool, "n1", slots=1)
    api = BatchTestClient(pool.account)
    base = f"/pools/{pool.pool_id}/nodes/n1/files"
    r = api.get(f"{base}/startup%2Fstdout.txt")
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"from the start task\n"
    r = api.get(f"{base}/startup%2Fstderr.txt")
    assert b"".join(r.streaming_content) == b"oops\n"
    listed = api.get(base, params={"recursive": "true"})
    names = [f["name"] for f in json.loads(listed.content)["value"]]
    assert {
        "shared",
        "startup",
        "startup/stdout.txt",
        "startup/stderr.txt",
        "startup/wd",
        "workitems",
    } <= set(names)


def test_a_start_task_whose_environment_no_process_can_have_fails_and_does_not_hold_the_node(
    agents, transactional_db
):
    pool = make_pool(
        "st-badenv", commandLine="/bin/true", environmentSettings=[{"name": "A=B", "value": "x"}]
    )
    agents.start(pool, "n1", slots=1, ready=("starttaskfailed",))
    info = node(pool, "n1").start_task_info
    assert (info["state"], info["failureInfo"]["code"]) == ("completed", "CommandLaunchFailed")


def test_start_tasks_that_run_as_root_take_turns_on_the_host(agents, transactional_db):
    """Two nodes of a pool share this host, where Batch gives each a machine: their root
    start tasks (apt-get install, say) run one after the other, not at once (apt's lock
    failed all but one); both nodes then take work."""
    log = Path(settings.DATA_DIR) / "start-task-turns.txt"
    log.unlink(missing_ok=True)  # the data dir outlives a test
    pool = make_pool(
        "st-turns",
        commandLine=sh(
            f"echo start $(date +%s.%N) >> {log}; sleep 0.6; echo end $(date +%s.%N) >> {log}"
        ),
        userIdentity=ADMIN,
        waitForSuccess=True,
    )
    agents.start(pool, "n1", slots=1, wait=False)
    agents.start(pool, "n2", slots=1)
    wait_for(lambda: node(pool, "n1").state in ("idle", "running"), message="n1 after its turn")
    events = sorted(
        (float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines())
    )
    assert [kind for _, kind in events] == ["start", "end", "start", "end"], events
    for n in ("n1", "n2"):
        assert node(pool, n).start_task_info["result"] == "success"
