"""azure-batch 14.2.0 through the Python Batch tutorial's flow (tests/sdk/task_files_flow.py,
tests/sdk/sdk14_task_files.py) against a live server, real agents and Azurite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.operations.pools import add_pool
from tests.sdk import task_files_flow as flow_

pytestmark = pytest.mark.sdk14
SCRIPT = Path(__file__).with_name("sdk14_task_files.py")


@pytest.fixture
def flow(azurite):
    flow = flow_.prepare(azurite)
    yield flow
    flow.close()


def test_the_tutorial_flow_produces_its_blobs_and_reports_each_failure(
    run14, sdk_account, agents, azurite, flow
):
    pool = add_pool(sdk_account, spec={"id": "tutorial14", "vmSize": "local"})
    agents.start(pool, "tut14-1", slots=2)
    done = run14("tutorial14", json.dumps(flow.tasks), script=SCRIPT)
    for i in range(3):
        assert done[f"Task{i}"] == {"result": "success", "exit_code": 0, "failure": None}
    flow_.check_blobs(azurite, flow)
    for task_id, code in flow_.FAILING.items():
        failure = done[task_id]["failure"]
        assert done[task_id]["result"] == "failure"
        assert (failure["category"], failure["code"]) == ("usererror", code)
        assert failure["message"] and "sig=" not in failure["message"]
    assert done["nomatch"]["exit_code"] == 0 and done["nomatch"]["failure"]["details"] == [
        "outputFile"
    ]
    assert done["unreachable"]["exit_code"] is None
