"""azure-batch 14.2.0 (msrest, api-version 2024-02-01.19.0) driven unmodified against
batchsite; each scenario runs in .venv-sdk14 (see sdk14_scenarios.py)."""

from __future__ import annotations

import pytest

from tasks.models import Job, Task
from tests.factories import JobFactory, SubTaskFactory, TaskFactory

pytestmark = pytest.mark.sdk14


def test_every_task_property_round_trips(run14):
    out = run14("roundtrip")
    assert out["mismatches"] == []
    assert out["state"] == "active"
    assert out["wall"] == "1:00:00" and out["retention"] == "1 day, 0:00:00"
    assert out["retries"] == 3 and out["retry_count"] == 0
    spec = Task.objects.get(task_id="Full-1").spec
    assert spec["authenticationTokenSettings"] == {"access": ["job"]}


def test_case_insensitive_duplicate_is_task_exists(run14):
    assert run14("duplicate") == {"code": "TaskExists"}


def test_add_collection_results_and_mixed_outcomes(run14):
    out = run14("collection")
    assert out["count"] == 100 and out["statuses"] == ["success"]
    assert out["mixed"] == {"good1": "success", "TAKEN": "clienterror", "good2": "success"}
    assert out["listed"] == ["good1", "good2", "taken"]


def test_add_collection_helper_with_threads_replays_and_splits_on_413(run14):
    out = run14("bulk")
    assert out["first"] == 350 and out["again"] == 350 and out["listed"] == 350
    assert out["split"] == 100 and out["wide_listed"] == 100


def test_paging_uses_the_absolute_next_link_with_filter_and_select(run14):
    out = run14("paging")
    assert out["ids"] == [f"p{i:02d}" for i in range(23)]
    assert out["filtered"] == [[f"p{i:02d}", "completed", None] for i in range(0, 23, 2)]


def test_filters(run14):
    out = run14("filters")
    assert out["startswith(id,'ALPHA')"] == ["alpha1", "alpha2"]
    assert out["state eq 'completed'"] == ["alpha2", "beta"]
    assert out["state ne 'completed'"] == ["alpha1", "gamma"]
    assert out["executionInfo/result eq 'Failure'"] == ["alpha2", "beta"]
    assert out["creationTime gt DateTime'2020-01-01T00:00:00Z'"] == [
        "alpha1",
        "alpha2",
        "beta",
        "gamma",
    ]
    assert out["stateTransitionTime lt DateTime'2020-01-01T00:00:00Z'"] == []
    assert out["bad"] == "InvalidQueryParameterValue"


def test_conditional_headers_with_unquoted_etags(run14):
    out = run14("conditional")
    assert out["not_modified"][0] == 304
    assert out["mismatch"] == [412, "ConditionNotMet"]
    assert out["state_after_412"] == "active"
    assert out["state_after_match"] == "completed"


def test_terminate_reactivate_update_delete_subtasks_and_counts(run14, sdk_account):
    job = JobFactory(account=sdk_account, job_id="life")
    TaskFactory(job=job, task_id="failed", failed=True)
    TaskFactory(job=job, task_id="ok", succeeded=True)
    TaskFactory(job=job, task_id="waiting")
    mi = TaskFactory(job=job, task_id="mi", multi_instance=True, running=True)
    SubTaskFactory(task=mi, subtask_id=1, state="completed", exit_code=0, result="success")
    out = run14("lifecycle", "life")
    assert out["terminate_again"] == "TaskCompleted"
    assert out["reactivated"] == ["active", "completed", 0, None, True]
    assert out["not_completed"] == "TaskNotCompleted"
    assert out["succeeded"] == "TaskSucceeded"
    assert out["updated"] == ["0:05:00", "7 days, 0:00:00", 0]
    assert out["update_completed"] == "TaskCompleted"
    assert out["subtasks_plain"] == 0
    assert out["subtasks_mi"] == [[1, 0, "completed"]]
    # active: failed (reactivated); running: mi; completed: ok, waiting (terminated)
    assert out["counts"] == [1, 1, 2, 1, 1]
    assert out["deleted"] == "TaskNotFound"
    assert Job.objects.get(pk=job.pk).completed_count == 1


def test_reactivate_refused_by_job_state(run14, sdk_account):
    for job_id, state in (("done", "completed"), ("ending", "terminating"), ("going", "deleting")):
        TaskFactory(
            job=JobFactory(account=sdk_account, job_id=job_id, state=state),
            task_id="failed",
            failed=True,
        )
    out = run14("job_state_refusals", "done", "ending", "going")
    assert out == {
        "done": "JobCompleted",
        "ending": "JobBeingTerminated",
        "going": "JobBeingDeleted",
    }


def test_wrong_key_unknown_account_and_stale_date_are_403(run14):
    out = run14("auth")
    assert out["wrong_key"] == [403, "AuthenticationFailed"]
    assert out["unknown_account"] == [403, "AuthenticationFailed"]
    assert out["stale_date"] == [403, "AuthenticationFailed"]
