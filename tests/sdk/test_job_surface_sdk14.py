"""azure-batch 14.2.0 against a live server: Disable/Enable Job with real running tasks and
job schedules (tests/sdk/sdk14_job_surface_scenarios.py runs in .venv-sdk14)."""

from __future__ import annotations

from pathlib import Path

from tasks.models import ComputeNode
from tasks.operations.pools import add_pool
from tests.sdk.test_job_surface_sdk15 import sweeping

SCENARIOS = Path(__file__).with_name("sdk14_job_surface_scenarios.py")


def test_disable_with_each_mode_and_enable(run14, agents, sdk_account, tmp_path):
    pool = add_pool(sdk_account, spec={"id": "pool14", "vmSize": "local"})
    agents.start(pool, "fourteen-1", slots=4)
    assert ComputeNode.objects.filter(pool=pool, state="idle").exists()
    with sweeping():
        out = run14("disable", "pool14", str(tmp_path / "go"), script=SCENARIOS)
    assert out["requeue"] == {
        "job": "disabled",
        "task": "active",
        "requeue_count": 1,
        "failure": None,
    }
    assert out["terminate"] == {
        "job": "disabled",
        "task": "completed",
        "requeue_count": 0,
        "failure": "TaskEnded",
    }
    assert out["wait"] == {
        "job": "disabling",
        "task": "running",
        "requeue_count": 0,
        "failure": None,
        "after": ["disabled", "completed"],
    }
    assert out["enabled"] == "active"
    assert out["enable_active"] == [409, "OperationInvalidForCurrentState"]
    assert out["disable_completed"] == [409, "JobCompleted"]


def test_a_schedule_makes_its_jobs_on_time_and_each_operation_works(run14, settings):
    settings.BATCHSITE_SCHEDULE_MINIMUM_SECONDS = 0.5
    with sweeping():
        out = run14("schedule", script=SCENARIOS)
    assert (out["exists"], out["missing"], out["next_run_is_start"]) == (True, False, True)
    assert out["jobs"] == [[f"every14:job-{n}", 3] for n in (1, 2, 3)]
    assert out["not_early"] == [True, True, True]
    assert (
        out["listed"] == ["every14:job-1", "every14:job-2", "every14:job-3"]
        and out["end_time"] is True
    )
    assert out["patched"] == [["k", "v"]]
    assert out["updated"] == [None, "other", 7200]
    assert out["disabled"] == "disabled" and out["listed_active"] == ["ops14"]
    assert out["terminated"] == ["completed", "completed"]
    assert out["terminate_again"] == [409, "JobScheduleCompleted"]
    assert out["deleted"] == [False, [404, "JobNotFound"]]
