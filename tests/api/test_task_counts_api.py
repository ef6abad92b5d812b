"""Get Job Task Counts (REFERENCE §9)."""

import json

import pytest

from tasks.models import Task
from tests.conftest import error_code
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def counts(batch, job) -> dict:
    r = batch.get(f"/jobs/{job.job_id}/taskcounts")
    assert r.status_code == 200, r.content
    return json.loads(r.content)


def test_a_job_without_tasks_counts_all_zero(batch, job):
    zero = {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}
    assert counts(batch, job) == {"taskCounts": zero, "taskSlotCounts": zero}


def test_counts_tasks_and_slots_in_every_state(batch, job):
    TaskFactory(job=job, required_slots=2)
    TaskFactory(job=job, state=Task.State.PREPARING, required_slots=3)
    TaskFactory(job=job, running=True)
    TaskFactory(job=job, succeeded=True, required_slots=4)
    TaskFactory(job=job, failed=True, required_slots=5)
    TaskFactory(job=JobFactory(account=job.account), running=True)
    assert counts(batch, job) == {
        "taskCounts": {"active": 1, "running": 2, "completed": 2, "succeeded": 1, "failed": 1},
        "taskSlotCounts": {"active": 2, "running": 4, "completed": 9, "succeeded": 4, "failed": 5},
    }


def test_counts_follow_every_task_operation_over_the_api(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", {"id": "a", "commandLine": "x", "requiredSlots": 2})
    batch.post(
        f"/jobs/{job.job_id}/addtaskcollection",
        {"value": [{"id": "b", "commandLine": "x"}, {"id": "c", "commandLine": "x"}]},
    )
    assert counts(batch, job)["taskCounts"]["active"] == 3
    batch.post(f"/jobs/{job.job_id}/tasks/a/terminate")
    assert counts(batch, job)["taskCounts"] == {
        "active": 2,
        "running": 0,
        "completed": 1,
        "succeeded": 0,
        "failed": 1,
    }
    assert counts(batch, job)["taskSlotCounts"]["failed"] == 2
    batch.post(f"/jobs/{job.job_id}/tasks/a/reactivate")
    assert counts(batch, job)["taskCounts"]["active"] == 3
    batch.delete(f"/jobs/{job.job_id}/tasks/b")
    assert counts(batch, job)["taskCounts"] == {
        "active": 2,
        "running": 0,
        "completed": 0,
        "succeeded": 0,
        "failed": 0,
    }
    assert counts(batch, job)["taskSlotCounts"]["active"] == 3


def test_answers_with_the_jobs_etag(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/taskcounts")
    assert r["ETag"] == job.etag and r["Last-Modified"] and r["request-id"]


def test_costs_a_fixed_number_of_queries_however_many_tasks(batch, job, django_assert_num_queries):
    for _ in range(20):
        TaskFactory(job=job)
    with django_assert_num_queries(2):  # the account, the job with its counters
        batch.get(f"/jobs/{job.job_id}/taskcounts")


def test_a_missing_job_is_job_not_found(batch):
    r = batch.get("/jobs/none/taskcounts")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")
