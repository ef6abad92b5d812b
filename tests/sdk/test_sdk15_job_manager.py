"""azure-batch 15.1.0 against a live server: a job manager task, itself an SDK 15 script,
adds its job's tasks with its authentication token, is refused outside its job, and with
killJobOnCompletion ends the job (issue 11, item 4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from azure.batch import models as m

from tasks.models import ComputeNode, Task
from tasks.operations.pools import add_pool
from tests.agents import wait_for

FLOW = Path(__file__).with_name("job_manager_flow.py")
POOL = "jmpool"
# As admin: a pool-scope admin may read this checkout's interpreter and script wherever it is.
ADMIN = m.UserIdentity(
    auto_user=m.AutoUserSpecification(
        scope=m.AutoUserScope.POOL, elevation_level=m.ElevationLevel.ADMIN
    )
)


@pytest.fixture
def node(agents, sdk_account, live_server):
    pool = add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})
    agents.start(pool, "jm-1", slots=3, BATCHSITE_ACCOUNT_URL=live_server.url)
    assert ComputeNode.objects.filter(pool=pool, state="idle").exists()
    return pool


def manager(python: str, *, workers: int, other: str) -> m.BatchJobManagerTask:
    task = m.BatchJobManagerTask(
        id="manager",
        command_line=f"{python} {FLOW} {workers} {other}",
        user_identity=ADMIN,
        run_exclusive=False,
    )
    # api-version 2025-06-01 dropped authenticationTokenSettings from its models; the
    # property still goes on the wire, and batchsite honours it.
    task["authenticationTokenSettings"] = {"access": ["job"]}
    return task


def stdout_of(client, job_id: str, task_id: str) -> dict:
    text = b"".join(client.download_task_file(job_id, task_id, "stdout.txt")).decode()
    return json.loads(text.strip().splitlines()[-1])


def run_manager(client, python: str, *, job_id: str) -> tuple:
    client.create_job(
        m.BatchJobCreateOptions(id="not-mine", pool_info=m.BatchPoolInfo(pool_id=POOL))
    )
    client.create_job(
        m.BatchJobCreateOptions(
            id=job_id,
            pool_info=m.BatchPoolInfo(pool_id=POOL),
            job_manager_task=manager(python, workers=3, other="not-mine"),
        )
    )
    wait_for(
        lambda: client.get_job(job_id).state == m.BatchJobState.COMPLETED,
        timeout=120,
        message="the job manager to end its job",
    )
    return client.get_job(job_id), stdout_of(client, job_id, "manager")


def test_a_job_manager_adds_its_tasks_with_its_token_and_ends_its_job(client15, node):
    job, seen = run_manager(client15, sys.executable, job_id="managed15")
    assert job.execution_info.termination_reason == "JMComplete"
    assert seen["sdk"].startswith("15.") and seen["job"] == "managed15"
    assert seen["done"] is True and seen["results"] == ["success"] * 3
    manager_task = client15.get_task("managed15", "manager")
    assert (manager_task.state, manager_task.execution_info.exit_code) == (
        m.BatchTaskState.COMPLETED,
        0,
    )
    assert sorted(t.id for t in client15.list_tasks("managed15")) == ["manager", "w0", "w1", "w2"]
    # Its token is refused outside its job: another job, Add and List Jobs, pools.
    assert seen["other_job"] == [403, "AuthorizationFailure"]
    assert seen["other_add"] == [403, "AuthorizationFailure"]
    assert seen["list_jobs"] == [403, "AuthorizationFailure"]
    assert seen["pools"] == [403, "AuthorizationFailure"]
    assert not Task.objects.filter(job__job_id="not-mine").exists()
