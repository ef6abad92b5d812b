"""Node ids are unique only within a pool: two accounts' nodes of one id never share a
directory, a process match or a task-file key (an agent of account B named `local-1` once
killed account A's running tasks and read A's files)."""

from __future__ import annotations

import time

import pytest

from tasks.models import ComputeNode, Task
from tasks.nodehost.storage import TaskFiles
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.conftest import BatchTestClient
from tests.execution import add, make_job
from tests.factories import AccountFactory


@pytest.fixture
def two_pools(transactional_db):
    return [
        add_pool(AccountFactory(name=name), spec={"id": "local", "vmSize": "local"})
        for name in ("alpha", "beta")
    ]


def test_an_agent_of_another_account_with_the_same_node_id_leaves_the_first_accounts_tasks_alone(
    agents, two_pools, tmp_path
):
    a, b = two_pools
    agents.start(a, "local-1", slots=1)
    marker = tmp_path / "started"
    task = add(
        make_job(a.account, a),
        "long",
        f"/bin/sh -c 'echo secret-of-alpha; touch {marker}; exec sleep 30'",
        userIdentity={"autoUser": {"elevationLevel": "admin"}},
    )  # root: it writes in the test's tmp_path
    wait_for(lambda: marker.exists(), message="alpha's task to start")

    agents.start(b, "local-1", slots=1, clean=False)  # registers, kills "its" leftovers, polls
    time.sleep(1.0)

    task.refresh_from_db()
    assert task.state == Task.State.RUNNING and task.node_name == "local-1"
    node_a, node_b = (ComputeNode.objects.get(pool=p, node_id="local-1") for p in two_pools)
    assert node_a.root_dir != node_b.root_dir
    assert "/alpha/" in node_a.root_dir and "/beta/" in node_b.root_dir

    # Beta's key for a task of its own on its local-1 is not alpha's directory.
    task.job.account = a.account
    assert TaskFiles.of_task(task).prefix.startswith("alpha/local/local-1/")
    r = BatchTestClient(b.account).get(f"/jobs/{task.job.job_id}/tasks/long/files/stdout.txt")
    assert r.status_code == 404  # beta does not even see alpha's job
