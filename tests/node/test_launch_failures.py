"""Any failure to start an attempt completes it with failureInfo CommandLaunchFailed and
frees its slot (issue 8, item 9): an environment variable named `A=B` once made the
agent's spawn raise a ValueError (only OSError was caught), and the task stayed `running`
with no process, holding its slot, forever."""

from __future__ import annotations

import pytest
from django.db import connection

from tasks.models import Task
from tasks.node import agent as agent_module
from tasks.node.agent import NodeAgent
from tasks.operations import nodes as node_ops
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory, TaskFactory


def legacy_task_with_an_impossible_environment(job, task_id: str) -> Task:
    """A task as a database written before names with "=" were refused may hold it (the
    rules layer refuses to add one now, so it is written directly)."""
    task = TaskFactory(
        job=job,
        task_id=task_id,
        command_line="/bin/true",
        spec={"environmentSettings": [{"name": "A=B", "value": "1"}]},
    )
    type(job).objects.filter(pk=job.pk).update(
        active_count=job.active_count + 1, active_slots=job.active_slots + 1
    )
    return task


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(), spec={"id": "launch", "vmSize": "local"})


def test_a_task_whose_process_cannot_be_created_fails_and_frees_its_slot_on_a_real_agent(
    agents, pool
):
    job = make_job(pool.account, pool)
    wedged = legacy_task_with_an_impossible_environment(job, "wedged")
    agents.start(pool, "one-slot", slots=1)
    wait_for(
        lambda: fresh(wedged).state == Task.State.COMPLETED,
        timeout=20,
        message="the task to complete",
    )
    assert (wedged.result, wedged.failure_info["code"], wedged.failure_info["category"]) == (
        "failure",
        "CommandLaunchFailed",
        "usererror",
    )
    assert wedged.exit_code is None
    after = add(job, "after", "/bin/true")  # the only slot is free again
    wait_for(
        lambda: fresh(after).state == Task.State.COMPLETED, timeout=20, message="the next task"
    )
    assert after.result == "success"


# --- the same with a fault injected into each step of starting, in an in-process agent -------


@pytest.fixture
def agent(pool, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "nodes")},
        },
    }
    had = getattr(connection, "writes_first", None)
    node_agent = NodeAgent(pool, node_id="inproc", slots=1)
    node_agent.node = node_ops.register_node(
        pool, node_id="inproc", slots=1, root_dir=str(node_agent.root)
    )
    yield node_agent
    for run in list(node_agent.runs.values()):
        node_agent._kill(run, "shutdown")
    connection.writes_first = had


def broken(*args, **kwargs):
    raise RuntimeError("injected fault")


@pytest.mark.parametrize("step", ["environment", "command_argv", "spawn"])
def test_a_fault_in_any_step_of_starting_fails_the_attempt_and_frees_the_slot(
    agent, pool, monkeypatch, step
):
    job = make_job(pool.account, pool)
    task = add(job, "t1", "/bin/true")
    monkeypatch.setattr(agent_module, step, broken)
    agent._report_and_claim()  # claims t1; starting it raises inside the agent
    monkeypatch.undo()
    assert agent._free() == 1, "the slot is still held"
    agent._flush_reports()
    task = fresh(task)
    assert (task.state, task.result, task.failure_info["code"]) == (
        "completed",
        "failure",
        "CommandLaunchFailed",
    )
    assert "injected fault" in task.failure_info["message"]
    assert (
        "injected fault"
        in (agent.root / "workitems" / job.job_id / "job-1" / "t1" / "stderr.txt").read_text()
    )

    nxt = add(job, "t2", "/bin/true")
    agent.next_claim = 0
    agent._report_and_claim()
    wait_for(
        lambda: (agent._collect_exits(), agent._flush_reports(), fresh(nxt).state == "completed")[
            -1
        ],
        timeout=10,
        message="the next task to run in the freed slot",
    )
    assert nxt.result == "success"


def test_a_fault_after_the_process_started_kills_it(agent, pool, monkeypatch, tmp_path):
    job = make_job(pool.account, pool)
    marker = tmp_path / "still-running"
    task = add(job, "t1", f"/bin/sh -c 'sleep 2; touch {marker}'")

    def register_fails(*args, **kwargs):
        raise ValueError("injected fault after spawn")

    monkeypatch.setattr(agent.selector, "register", register_fails)
    agent._report_and_claim()
    monkeypatch.undo()
    assert agent._free() == 1 and not agent.runs
    agent._flush_reports()
    assert fresh(task).failure_info["code"] == "CommandLaunchFailed"
    import time

    time.sleep(2.5)
    assert not marker.exists(), "the process of a failed start went on running"
