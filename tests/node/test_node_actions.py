"""Reboot, reimage, disable/enable scheduling and leaving the pool, with real agents: each
option's effect on the running task, and what the node does afterwards."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.utils import timezone

from tasks.models import Attempt, ComputeNode, Task
from tasks.operations import nodes as node_ops
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, make_job
from tests.factories import AccountFactory

# Counts the start task's runs in the node's shared/ directory (which a reboot keeps).
BOOT_COUNTER = {"commandLine": "/bin/sh -c 'echo boot >> $AZ_BATCH_NODE_SHARED_DIR/boots'"}
LONG = "/bin/sh -c 'echo $$ > pid; if [ $AZ_BATCH_NODE_ID = n1 ]; then exec sleep 60; fi'"


@pytest.fixture
def pool(transactional_db):
    return add_pool(
        AccountFactory(), spec={"id": "actions", "vmSize": "local", "startTask": BOOT_COUNTER}
    )


def node(pool, node_id: str = "n1") -> ComputeNode:
    return ComputeNode.objects.get(pool=pool, node_id=node_id)


def fresh(task: Task) -> Task:
    task.refresh_from_db()
    return task


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def running_on_n1(pool, command: str = LONG, **spec) -> tuple[Task, int]:
    """A task running on n1 (a long sleep there, quick elsewhere) and its process id."""
    task = add(make_job(pool.account, pool, **spec), "t1", command)
    wait_for(
        lambda: (
            fresh(task).state == Task.State.RUNNING
            and Path(task.task_root_directory, "wd/pid").exists()
        ),
        message="the task to start on n1",
    )
    assert task.node_name == "n1"
    pid = int(
        wait_for(
            lambda: Path(task.task_root_directory, "wd/pid").read_text().strip(), message="its pid"
        )
    )
    return task, pid


def boots(pool, node_id: str = "n1") -> int:
    path = Path(node(pool, node_id).root_dir, "shared", "boots")
    return len(path.read_text().splitlines()) if path.exists() else 0


def restarted(pool, before: ComputeNode) -> bool:
    now = node(pool, before.node_id)
    return now.registered > before.registered and now.state == "idle" and not now.pending_action


# --- reboot and reimage ----------------------------------------------------------------------


def test_reboot_with_requeue_requeues_the_running_task_and_it_completes_elsewhere(agents, pool):
    proc = agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    agents.start(pool, "n2", slots=1)
    before = node(pool)
    assert boots(pool) == 1
    rebooted = node_ops.reboot_node(before, option="requeue")
    assert rebooted.state == "rebooting"
    assert (fresh(task).state, fresh(task).requeue_count) in {
        (Task.State.ACTIVE, 1),
        (Task.State.RUNNING, 1),
    }
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, timeout=20, message="the requeued task"
    )
    assert (task.result, task.node_name, task.requeue_count) == ("success", "n2", 1)
    wait_for(
        lambda: not alive(pid), timeout=5, message="the process on n1 to be killed"
    )  # at its next look
    wait_for(lambda: restarted(pool, before), timeout=30, message="n1 to come back from its reboot")
    assert (
        proc.poll() is None and node(pool).agent_pid == proc.pid
    )  # the same process, restarted in place
    assert boots(pool) == 2  # the start task ran again
    assert node(pool).start_task_info["result"] == "success"


def test_reboot_with_taskcompletion_lets_the_task_finish_first(agents, pool):
    agents.start(pool, "n1", slots=1)
    task = add(make_job(pool.account, pool), "t1", "/bin/sh -c 'sleep 1.5; echo done'")
    wait_for(lambda: fresh(task).state == Task.State.RUNNING, message="the task to start")
    before = node(pool)
    node_ops.reboot_node(before, option="taskcompletion")
    time.sleep(0.5)
    assert (fresh(task).state, node(pool).state) == (Task.State.RUNNING, "rebooting")
    wait_for(lambda: restarted(pool, before), timeout=30, message="n1 to reboot after the task")
    assert (fresh(task).state, task.result, task.requeue_count) == (
        Task.State.COMPLETED,
        "success",
        0,
    )
    assert Path(task.task_root_directory, "stdout.txt").read_text() == "done\n"


def test_reboot_with_terminate_kills_the_task_and_completes_it_as_terminated(agents, pool):
    agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    before = node(pool)
    node_ops.reboot_node(before, option="terminate")
    task = fresh(task)
    assert (task.state, task.result, task.failure_info["code"]) == (
        Task.State.COMPLETED,
        "failure",
        "TaskEnded",
    )
    wait_for(lambda: not alive(pid), message="the terminated process to die")
    wait_for(lambda: restarted(pool, before), timeout=30, message="n1 to come back")
    assert Attempt.objects.get(task=task).outcome == Attempt.Outcome.TERMINATED
    assert fresh(task).requeue_count == 0


def test_reimage_wipes_the_nodes_disk_and_the_start_task_runs_again(agents, pool):
    agents.start(pool, "n1", slots=1)
    job = make_job(pool.account, pool)
    done = add(job, "done", "/bin/sh -c 'echo kept > $AZ_BATCH_NODE_SHARED_DIR/data; echo out'")
    wait_for(lambda: fresh(done).state == Task.State.COMPLETED, message="a first task")
    root = Path(node(pool).root_dir)
    assert (root / "shared" / "data").exists() and Path(
        done.task_root_directory, "stdout.txt"
    ).exists()
    before = node(pool)
    assert node_ops.reimage_node(before).state == "reimaging"
    wait_for(
        lambda: restarted(pool, before), timeout=30, message="n1 to come back from its reimage"
    )
    assert not (root / "shared" / "data").exists()
    assert not Path(done.task_root_directory).exists()
    assert boots(pool) == 1  # the boot counter was wiped too, then the start task ran again
    assert fresh(done).files_cleaned  # its files are gone: the file calls answer TaskFilesCleanedup
    again = add(job, "after", "/bin/true")
    wait_for(lambda: fresh(again).state == Task.State.COMPLETED, message="work after the reimage")


def test_reboot_a_node_whose_start_task_failed_runs_it_again(agents, transactional_db, tmp_path):
    flag = tmp_path / "fixed"
    pool = add_pool(
        AccountFactory(),
        spec={
            "id": "fixme",
            "vmSize": "local",
            "startTask": {
                "commandLine": f"/bin/sh -c '[ -e {flag} ]'",
                "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
            },
        },
    )  # root: it looks in the test's tmp_path
    agents.start(pool, "n1", slots=1, ready=("starttaskfailed",))
    flag.touch()
    before = node(pool)
    node_ops.reboot_node(before)
    wait_for(lambda: restarted(pool, before), timeout=30, message="n1 to be idle after its reboot")
    assert node(pool).start_task_info["result"] == "success"


# --- disable and enable scheduling -------------------------------------------------------------


def test_disable_scheduling_with_requeue_sends_the_task_elsewhere_and_the_node_takes_nothing(
    agents, pool
):
    agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    agents.start(pool, "n2", slots=1)
    node_ops.disable_node_scheduling(node(pool), option="requeue")
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, timeout=20, message="the requeued task"
    )
    assert (task.node_name, task.requeue_count) == ("n2", 1)
    wait_for(
        lambda: not alive(pid), timeout=5, message="the process on n1 to be killed"
    )  # at its next look
    agents.stop("n2")
    other = add(make_job(pool.account, pool, "job2"), "t2", "/bin/true")
    time.sleep(1.0)
    assert fresh(other).state == Task.State.ACTIVE
    assert (node(pool).state, node(pool).scheduling_enabled) == ("offline", False)
    node_ops.enable_node_scheduling(node(pool))
    wait_for(
        lambda: fresh(other).state == Task.State.COMPLETED,
        message="work once scheduling is enabled",
    )
    assert fresh(other).node_name == "n1"


def test_disable_scheduling_with_terminate_kills_the_task(agents, pool):
    agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    node_ops.disable_node_scheduling(node(pool), option="terminate")
    assert fresh(task).failure_info["code"] == "TaskEnded"
    wait_for(lambda: not alive(pid), message="the process to die")
    wait_for(lambda: node(pool).state == "offline", message="the node to be offline")


def test_disable_scheduling_with_taskcompletion_lets_the_task_finish(agents, pool):
    agents.start(pool, "n1", slots=1)
    task = add(make_job(pool.account, pool), "t1", "/bin/sh -c 'sleep 1; echo done'")
    wait_for(lambda: fresh(task).state == Task.State.RUNNING, message="the task to start")
    node_ops.disable_node_scheduling(node(pool), option="taskcompletion")
    wait_for(lambda: fresh(task).state == Task.State.COMPLETED, message="the task to finish")
    assert (task.result, task.requeue_count) == ("success", 0)
    wait_for(lambda: node(pool).state == "offline", message="the node to be offline once idle")


# --- leaving the pool ----------------------------------------------------------------------------


def order_removal(pool, node_id: str, option: str) -> None:
    """What the pool operations (resize down, Remove Nodes) will do."""
    ComputeNode.objects.filter(pool=pool, node_id=node_id).update(
        pending_action="remove", action_option=option
    )


def test_leaving_with_requeue_requeues_the_task_and_the_agent_exits_0(agents, pool):
    proc = agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    root = Path(node(pool).root_dir)
    agents.start(pool, "n2", slots=1)
    order_removal(pool, "n1", "requeue")
    assert proc.wait(20) == 0
    assert not ComputeNode.objects.filter(pool=pool, node_id="n1").exists()
    assert not root.exists()  # the node's disk goes with it
    assert not alive(pid)
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, timeout=20, message="the requeued task"
    )
    assert (task.node_name, task.requeue_count) == ("n2", 1)


def test_leaving_with_terminate_completes_the_task_as_terminated(agents, pool):
    proc = agents.start(pool, "n1", slots=1)
    task, pid = running_on_n1(pool)
    order_removal(pool, "n1", "terminate")
    assert proc.wait(20) == 0
    task = fresh(task)
    assert (task.state, task.failure_info["code"], task.requeue_count) == (
        Task.State.COMPLETED,
        "TaskEnded",
        0,
    )
    assert not alive(pid)


def test_leaving_with_taskcompletion_waits_for_the_task(agents, pool):
    proc = agents.start(pool, "n1", slots=1)
    task = add(make_job(pool.account, pool), "t1", "/bin/sh -c 'sleep 1.5; echo done'")
    wait_for(lambda: fresh(task).state == Task.State.RUNNING, message="the task to start")
    other = add(make_job(pool.account, pool, "job2"), "t2", "/bin/true")
    order_removal(pool, "n1", "taskcompletion")
    wait_for(lambda: node(pool).state == "leavingpool", message="the node to be leaving")
    assert proc.wait(20) == 0
    assert (fresh(task).state, fresh(task).result) == (Task.State.COMPLETED, "success")
    assert fresh(other).state == Task.State.ACTIVE  # a leaving node takes no new work


def test_leaving_with_retaineddata_waits_for_the_tasks_retention(agents, pool):
    proc = agents.start(pool, "n1", slots=1)
    task = add(
        make_job(pool.account, pool),
        "t1",
        "/bin/true",
        constraints={"retentionTime": timedelta(seconds=3)},
    )
    wait_for(lambda: fresh(task).state == Task.State.COMPLETED, message="the task")
    ended = fresh(task).end_time
    order_removal(pool, "n1", "retaineddata")
    wait_for(lambda: node(pool).state == "leavingpool", message="the node to be leaving")
    assert proc.wait(20) == 0
    assert timezone.now() >= ended + timedelta(seconds=3)
    assert not ComputeNode.objects.filter(pool=pool, node_id="n1").exists()


def test_an_agent_killed_while_a_reimage_waits_for_retention_waits_on_after_its_restart(
    agents, pool
):
    agents.start(pool, "n1", slots=1)
    task = add(
        make_job(pool.account, pool),
        "t1",
        "/bin/sh -c 'echo kept'",
        constraints={"retentionTime": timedelta(seconds=15)},
    )
    wait_for(lambda: fresh(task).state == Task.State.COMPLETED, message="the task")
    before = node(pool)
    node_ops.reimage_node(before, option="retaineddata")
    agents.kill("n1")
    agents.start(pool, "n1", slots=1, clean=False, ready=("reimaging",))
    assert Path(task.task_root_directory, "stdout.txt").exists()  # still kept: its retention runs
    wait_for(
        lambda: restarted(pool, before), timeout=60, message="the reimage once the retention passed"
    )
    assert timezone.now() >= fresh(task).end_time + timedelta(seconds=15)
    assert not Path(task.task_root_directory).exists() and fresh(task).files_cleaned
