"""Update Task's maxWallClockTime applies to the running attempt, with a real agent: a
shorter limit ends it (failureInfo TaskEnded), a longer one lets it run on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasks.models import Attempt, Task
from tasks.operations.pools import add_pool
from tasks.operations.tasks import update_task
from tests.agents import wait_for
from tests.execution import add, make_job
from tests.factories import AccountFactory


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(), spec={"id": "wallclock", "vmSize": "local"})


def fresh(task: Task) -> Task:
    task.refresh_from_db()
    return task


def running(pool, command: str, **constraints) -> Task:
    task = add(
        make_job(pool.account, pool),
        "t1",
        command,
        **({"constraints": constraints} if constraints else {}),
    )
    wait_for(lambda: fresh(task).state == Task.State.RUNNING, message="the task to start")
    return task


def test_a_shorter_wall_clock_ends_the_running_task(agents, pool):
    agents.start(pool, "n1", slots=1)
    task = running(pool, "sleep 120")
    update_task(fresh(task), constraints={"maxWallClockTime": timedelta(seconds=1)})
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message="the wall clock to end it",
    )
    assert (task.result, task.failure_info["code"]) == (Task.Result.FAILURE, "TaskEnded")
    assert "wall clock" in task.failure_info["message"]
    assert task.end_time - task.start_time < timedelta(seconds=120)
    assert Attempt.objects.get(task=task).outcome == Attempt.Outcome.FAILED


def test_a_longer_wall_clock_lets_the_running_task_finish(agents, pool):
    agents.start(pool, "n1", slots=1)
    task = running(pool, "/bin/sh -c 'sleep 6; echo done'", maxWallClockTime=timedelta(seconds=4))
    update_task(fresh(task), constraints={"maxWallClockTime": timedelta(seconds=60)})
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED, timeout=30, message="the task to finish"
    )
    assert (task.result, task.exit_code, task.failure_info) == (Task.Result.SUCCESS, 0, None)


def test_update_task_through_the_api_ends_the_running_task_as_batch_does(agents, account, batch):
    pool = add_pool(account, spec={"id": "api-wallclock", "vmSize": "local"})
    agents.start(pool, "n1", slots=1)
    task = running(pool, "sleep 120")
    r = batch.put(
        f"/jobs/{task.job.job_id}/tasks/t1", {"constraints": {"maxWallClockTime": "PT1S"}}
    )
    assert r.status_code == 200, r.content
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message="the wall clock to end it",
    )
    got = batch.get(f"/jobs/{task.job.job_id}/tasks/t1").json()
    assert got["executionInfo"]["result"] == "failure"
    assert got["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    assert got["constraints"]["maxWallClockTime"] == "PT1S"


def test_the_update_wakes_the_agent_which_then_looks_again_when_the_limit_runs_out(agents, pool):
    """With a poll far longer than the test, only the wake-up and the deadline it sets end it."""
    agents.start(pool, "n1", slots=1, BATCHSITE_NODE_POLL_SECONDS="300")
    task = running(pool, "sleep 120")
    update_task(fresh(task), constraints={"maxWallClockTime": timedelta(seconds=3)})
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message="the woken agent to end it",
    )
    assert task.failure_info["code"] == "TaskEnded"
