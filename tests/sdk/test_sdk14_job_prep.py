"""azure-batch 14.2.0 against a live server with a real agent: job preparation and release
tasks (tests/sdk/sdk14_job_prep_scenarios.py runs in .venv-sdk14)."""

from __future__ import annotations

from pathlib import Path

from tasks.operations.pools import add_pool

SCENARIOS = Path(__file__).with_name("sdk14_job_prep_scenarios.py")


def test_preparation_release_and_their_status_when_all_tasks_complete(run14, agents, sdk_account):
    pool = add_pool(sdk_account, spec={"id": "prep14pool", "vmSize": "local"})
    agents.start(pool, "p14-1", slots=2)
    out = run14("all_tasks_complete", "prep14pool", script=SCENARIOS)
    assert out["job"] == ["completed", "AllTasksComplete"]
    assert out["tasks"] == [["t0", 0], ["t1", 0], ["t2", 0]]
    assert out["statuses"] == [["prep14pool", "completed", "success", 0, "completed", 0]]
    assert out["release_after_tasks"] is True
    assert out["prep_out"] == "prepared\n"
    assert out["release_out"] == "released jobrelease\n"
    assert out["selected"] == ["p14-1"]
    assert out["deleted"] == "JobNotFound"
    assert out["plain"] == [409, "JobPreparationTaskOrReleaseTaskNotSpecified"]
