"""Disable Job and Enable Job on the wire (POST /jobs/{id}/disable, /enable)."""

import json

import pytest

from tasks.models import Job, Task
from tests.conftest import error_code
from tests.factories import AccountFactory, JobFactory, TaskFactory

pytestmark = pytest.mark.django_db


def state(batch, job) -> dict:
    r = batch.get(f"/jobs/{job.job_id}")
    assert r.status_code == 200
    return json.loads(r.content)


@pytest.mark.parametrize("mode", ["requeue", "terminate", "wait"])
def test_disable_answers_202_with_the_new_etag_and_the_job_reads_disabled(batch, account, mode):
    job = JobFactory(account=account)
    r = batch.post(f"/jobs/{job.job_id}/disable", {"disableTasks": mode})
    assert r.status_code == 202 and r.content == b""
    job.refresh_from_db()
    assert r["ETag"] == job.etag
    got = state(batch, job)
    assert (got["state"], got["previousState"]) == ("disabled", "active")


def test_wait_keeps_a_job_with_running_tasks_disabling(batch, account):
    job = JobFactory(account=account)
    TaskFactory(job=job, running=True)
    assert batch.post(f"/jobs/{job.job_id}/disable", {"disableTasks": "wait"}).status_code == 202
    assert state(batch, job)["state"] == "disabling"  # what 15.x's poller waits on
    assert Task.objects.get(job=job).state == "running"


def test_enable_answers_202_and_the_job_is_active(batch, account):
    job = JobFactory(account=account, disabled=True)
    r = batch.post(f"/jobs/{job.job_id}/enable", headers={"Content-Type": "application/json"})
    assert r.status_code == 202
    assert state(batch, job)["state"] == "active"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MissingRequiredProperty"),
        ({"disableTasks": "later"}, "InvalidPropertyValue"),
        ({"disableTasks": "wait", "x": 1}, "UnsupportedProperty"),
    ],
)
def test_a_bad_disable_body_is_a_batch_400_and_changes_nothing(batch, account, body, code):
    job = JobFactory(account=account)
    r = batch.post(f"/jobs/{job.job_id}/disable", body)
    assert (r.status_code, error_code(r)) == (400, code)
    assert Job.objects.get(pk=job.pk).state == "active"


def test_the_mode_is_read_case_insensitively_as_the_service_does(batch, account):
    job = JobFactory(account=account)
    assert batch.post(f"/jobs/{job.job_id}/disable", {"disableTasks": "Requeue"}).status_code == 202


def test_refusals_are_409_with_the_job_state_code(batch, account):
    done = JobFactory(account=account, completed=True)
    r = batch.post(f"/jobs/{done.job_id}/disable", {"disableTasks": "requeue"})
    assert (r.status_code, error_code(r)) == (409, "JobCompleted")
    active = JobFactory(account=account)
    r = batch.post(f"/jobs/{active.job_id}/enable", headers={"Content-Type": "application/json"})
    assert (r.status_code, error_code(r)) == (409, "OperationInvalidForCurrentState")


def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(batch, account):
    job = JobFactory(account=account)
    r = batch.post(
        f"/jobs/{job.job_id}/disable",
        {"disableTasks": "requeue"},
        headers={"If-Match": "0x8DSTALE"},
    )
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    assert Job.objects.get(pk=job.pk).state == "active"
    r = batch.post(
        f"/jobs/{job.job_id}/disable", {"disableTasks": "requeue"}, headers={"If-Match": job.etag}
    )
    assert r.status_code == 202


def test_another_accounts_job_is_not_found(batch):
    other = JobFactory(account=AccountFactory())
    r = batch.post(f"/jobs/{other.job_id}/disable", {"disableTasks": "requeue"})
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")
    assert Job.objects.get(pk=other.pk).state == "active"
