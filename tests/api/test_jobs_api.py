"""The Job calls a client needs around tasks (REFERENCE §12)."""

import json
from email.utils import parsedate_to_datetime

import pytest

from tasks.models import Job, Task
from tests.conftest import error_code
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.django_db

INFINITE = "P10675199DT2H48M5.4775807S"
CAPTURED_15X = {
    "id": "j1",
    "poolInfo": {"poolId": "p"},
    "priority": 100,
    "constraints": {"maxWallClockTime": "P1D", "maxTaskRetryCount": 1},
    "usesTaskDependencies": True,
    "onAllTasksComplete": "terminatejob",
}


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def assert_job_headers(response, job: Job):
    assert response["ETag"] == job.etag
    assert parsedate_to_datetime(response["Last-Modified"]) == job.last_modified.replace(
        microsecond=0
    )
    assert response["DataServiceId"] == f"http://testserver/jobs/{job.job_id}"
    assert response["request-id"] and response["client-request-id"] == "test-client-id"


def test_add_answers_201_with_the_headers_the_sdks_read(batch, account):
    r = batch.post("/jobs", CAPTURED_15X)
    assert r.status_code == 201 and r.content == b""
    assert_job_headers(r, Job.objects.get(account=account))


def test_an_added_job_reads_back_as_sent(batch):
    batch.post(
        "/jobs",
        {
            **CAPTURED_15X,
            "displayName": "d",
            "metadata": [{"name": "k", "value": "v"}],
            "onTaskFailure": "performexitoptionsjobaction",
            "allowTaskPreemption": True,
        },
    )
    got = body(batch.get("/jobs/j1"))
    assert {
        k: got[k]
        for k in (
            "id",
            "displayName",
            "priority",
            "usesTaskDependencies",
            "onAllTasksComplete",
            "onTaskFailure",
            "poolInfo",
            "metadata",
            "allowTaskPreemption",
        )
    } == {
        "id": "j1",
        "displayName": "d",
        "priority": 100,
        "usesTaskDependencies": True,
        "onAllTasksComplete": "terminatejob",
        "onTaskFailure": "performexitoptionsjobaction",
        "poolInfo": {"poolId": "p"},
        "metadata": [{"name": "k", "value": "v"}],
        "allowTaskPreemption": True,
    }
    assert got["constraints"] == {"maxWallClockTime": "P1D", "maxTaskRetryCount": 1}
    assert got["state"] == "active" and "previousState" not in got
    assert got["executionInfo"]["poolId"] == "p" and "endTime" not in got["executionInfo"]
    assert got["odata.metadata"] == "http://testserver/$metadata#jobs/@Element"


def test_the_14x_job_body_is_accepted(batch):
    r = batch.post(
        "/jobs",
        {"id": "j14", "poolInfo": {"poolId": "p"}, "maxParallelTasks": -1},
        api_version="2024-02-01.19.0",
    )
    assert r.status_code == 201
    got = body(batch.get("/jobs/j14"))
    assert (got["maxParallelTasks"], got["priority"], got["constraints"]["maxWallClockTime"]) == (
        -1,
        0,
        INFINITE,
    )


def test_add_refuses_an_id_already_used_in_any_case(batch):
    batch.post("/jobs", CAPTURED_15X)
    r = batch.post("/jobs", {**CAPTURED_15X, "id": "J1"})
    assert (r.status_code, error_code(r)) == (409, "JobExists")


def test_get_answers_with_its_headers(batch, job):
    r = batch.get(f"/jobs/{job.job_id}")
    got = body(r)
    assert_job_headers(r, job)
    assert got["eTag"] == job.etag and got["url"] == f"http://testserver/jobs/{job.job_id}"


def test_get_of_a_missing_job_is_job_not_found(batch):
    r = batch.get("/jobs/none")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_list_answers_with_the_accounts_jobs_in_id_order(batch, account):
    for job_id in ("b", "C", "a"):
        JobFactory(account=account, job_id=job_id)
    got = body(batch.get("/jobs"))
    assert got["odata.metadata"] == "http://testserver/$metadata#jobs"
    assert [j["id"] for j in got["value"]] == ["a", "b", "C"]


def test_list_filters_by_state_and_id(batch, account):
    JobFactory(account=account, job_id="run1")
    JobFactory(account=account, job_id="done1", completed=True)
    JobFactory(account=account, job_id="run2")
    assert [
        j["id"]
        for j in body(batch.get("/jobs", params={"$filter": "state eq 'completed'"}))["value"]
    ] == ["done1"]
    assert [
        j["id"]
        for j in body(batch.get("/jobs", params={"$filter": "startswith(id,'run')"}))["value"]
    ] == ["run1", "run2"]


def test_list_pins_its_queries(batch, account, django_assert_num_queries):
    for _ in range(12):
        TaskFactory(job=JobFactory(account=account))
    with django_assert_num_queries(2):  # the account, one page
        r = batch.get("/jobs", params={"$expand": "stats"})
    assert len(body(r)["value"]) == 12


def test_patch_changes_only_what_it_names_and_answers_the_new_etag(batch, account):
    batch.post("/jobs", CAPTURED_15X)
    r = batch.patch("/jobs/j1", {"priority": 5})
    assert r.status_code == 200 and r.content == b""
    job = Job.objects.get(account=account)
    assert_job_headers(r, job)
    got = body(batch.get("/jobs/j1"))
    assert (
        got["priority"],
        got["constraints"]["maxTaskRetryCount"],
        got["onAllTasksComplete"],
    ) == (5, 1, "terminatejob")


def test_put_replaces_every_updatable_property(batch):
    # (onAllTasksComplete noaction: a PUT that leaves it out of a terminatejob job is refused, below)
    batch.post(
        "/jobs",
        {
            **CAPTURED_15X,
            "onAllTasksComplete": "noaction",
            "metadata": [{"name": "k", "value": "v"}],
        },
    )
    r = batch.put("/jobs/j1", {"poolInfo": {"poolId": "q"}})
    assert r.status_code == 200
    got = body(batch.get("/jobs/j1"))
    assert (got["priority"], got["constraints"], got["onAllTasksComplete"], got["poolInfo"]) == (
        0,
        {"maxWallClockTime": INFINITE, "maxTaskRetryCount": 0},
        "noaction",
        {"poolId": "q"},
    )
    assert "metadata" not in got


def test_terminatejob_cannot_be_turned_off_by_patch_or_put(batch):
    """Batch: a job's onAllTasksComplete may not go from terminatejob to noaction (400
    InvalidPropertyValue); a PUT without it means noaction."""
    batch.post("/jobs", CAPTURED_15X)
    for r in (
        batch.patch("/jobs/j1", {"onAllTasksComplete": "noaction"}),
        batch.put("/jobs/j1", {"poolInfo": {"poolId": "q"}}),
    ):
        assert r.status_code == 400 and r.json()["code"] == "InvalidPropertyValue"
    assert body(batch.get("/jobs/j1"))["onAllTasksComplete"] == "terminatejob"


def test_put_accepts_the_job_a_client_read_back(batch):
    batch.post("/jobs", CAPTURED_15X)
    got = body(batch.get("/jobs/j1"))
    got["priority"] = 9
    assert batch.put("/jobs/j1", got).status_code == 200
    assert body(batch.get("/jobs/j1"))["priority"] == 9


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_update_of_a_job_that_is_ending_is_refused(batch, account, trait, code):
    job = JobFactory(account=account, **{trait: True})
    r = batch.patch(f"/jobs/{job.job_id}", {"priority": 5})
    assert (r.status_code, error_code(r)) == (409, code)


def test_terminate_answers_202_and_the_job_is_completed_at_once(batch, account):
    job = JobFactory(account=account)
    TaskFactory(job=job, running=True)
    r = batch.post(f"/jobs/{job.job_id}/terminate", {"terminateReason": "UserTerminate"})
    assert r.status_code == 202 and r.content == b""
    job.refresh_from_db()
    assert_job_headers(r, job)
    got = body(batch.get(f"/jobs/{job.job_id}"))  # what 15.x's LRO poller reads
    assert (got["state"], got["previousState"]) == ("completed", "terminating")
    assert (
        got["executionInfo"]["terminateReason"] == "UserTerminate"
        and "endTime" in got["executionInfo"]
    )
    assert Task.objects.get(job=job).state == "completed"


def test_terminate_with_the_empty_body_14x_sends_uses_the_user_reason(batch, account):
    job = JobFactory(account=account)
    r = batch.post(f"/jobs/{job.job_id}/terminate", headers={"Content-Type": "application/json"})
    assert r.status_code == 202
    assert (
        body(batch.get(f"/jobs/{job.job_id}"))["executionInfo"]["terminateReason"]
        == "UserTerminate"
    )


@pytest.mark.parametrize(
    ("trait", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_terminate_of_a_job_that_is_ending_is_refused(batch, account, trait, code):
    job = JobFactory(account=account, **{trait: True})
    r = batch.post(f"/jobs/{job.job_id}/terminate", {"terminateReason": "x"})
    assert (r.status_code, error_code(r)) == (409, code)


def test_delete_answers_202_and_a_small_job_is_gone_at_once(batch, account):
    job = JobFactory(account=account)
    TaskFactory(job=job)
    r = batch.delete(f"/jobs/{job.job_id}")
    assert r.status_code == 202 and r.content == b""
    r = batch.get(f"/jobs/{job.job_id}")  # what 15.x's LRO poller reads
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")
    assert not Task.objects.exists()


def test_delete_of_a_job_being_deleted_is_refused(batch, account):
    job = JobFactory(account=account, deleting=True)
    r = batch.delete(f"/jobs/{job.job_id}")
    assert (r.status_code, error_code(r)) == (409, "JobBeingDeleted")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("PUT", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/terminate"),
        ("GET", "/taskcounts"),
    ],
)
def test_every_job_operation_on_a_missing_job_is_job_not_found(batch, method, path):
    r = batch.request(
        method, f"/jobs/none{path}", body={} if method in ("PUT", "PATCH", "POST") else None
    )
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")
