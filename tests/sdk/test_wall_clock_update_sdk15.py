"""azure-batch 15.1.0's replace_task on a running task: the new maxWallClockTime ends the
running attempt on a real agent, as the service terminates a task past its constraint."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.batch import models as m

from tasks.models import Pool
from tasks.operations.pools import add_pool
from tests.agents import wait_for

POOL = "wallpool"


@pytest.fixture
def pool(sdk_account) -> Pool:
    return add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})


def test_replace_task_shortens_the_running_attempts_wall_clock(client15, agents, pool):
    agents.start(pool, "wall-1", slots=1)
    client15.create_job(m.BatchJobCreateOptions(id="wj", pool_info=m.BatchPoolInfo(pool_id=POOL)))
    client15.create_task("wj", m.BatchTaskCreateOptions(id="sleeper", command_line="sleep 120"))
    task = wait_for(
        lambda: (t := client15.get_task("wj", "sleeper")).state == m.BatchTaskState.RUNNING and t,
        timeout=20,
        message="the task to run",
    )
    task.constraints = m.BatchTaskConstraints(max_wall_clock_time=dt.timedelta(seconds=1))
    client15.replace_task("wj", "sleeper", task)
    ended = wait_for(
        lambda: (t := client15.get_task("wj", "sleeper")).state == m.BatchTaskState.COMPLETED and t,
        timeout=30,
        message="the wall clock to end it",
    )
    info = ended.execution_info
    assert info.result == m.BatchTaskExecutionResult.FAILURE
    assert info.failure_info.code == "TaskEnded"
    assert info.end_time - info.start_time < dt.timedelta(seconds=120)
    assert ended.constraints.max_wall_clock_time == dt.timedelta(seconds=1)
