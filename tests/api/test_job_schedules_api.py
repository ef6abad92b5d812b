"""Job schedules on the wire: /jobschedules, /jobschedules/{id}[/disable|/enable|/terminate|/jobs]."""

import json

import pytest

from tasks.models import Job, JobSchedule
from tests.conftest import error_code
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

# What 15.x's create_job_schedule sends (BatchJobScheduleCreateOptions).
CAPTURED = {
    "id": "nightly",
    "schedule": {"recurrenceInterval": "PT1H", "startWindow": "PT10M"},
    "jobSpecification": {
        "priority": 10,
        "poolInfo": {"poolId": "p"},
        "constraints": {"maxWallClockTime": "PT2H", "maxTaskRetryCount": 1},
    },
    "metadata": [{"name": "team", "value": "a"}],
}


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_add_answers_201_and_get_reads_it_back_with_its_first_job(batch, account):
    r = batch.post("/jobschedules", CAPTURED)
    assert r.status_code == 201 and r.content == b""
    schedule = JobSchedule.objects.get(account=account)
    assert r["ETag"] == schedule.etag and r["Location"] == "http://testserver/jobschedules/nightly"
    got = body(batch.get("/jobschedules/nightly"))
    assert got["id"] == "nightly" and got["state"] == "active"
    assert got["schedule"] == {"recurrenceInterval": "PT1H", "startWindow": "PT10M"}
    assert got["jobSpecification"]["constraints"] == {
        "maxWallClockTime": "PT2H",
        "maxTaskRetryCount": 1,
    }
    assert got["metadata"] == [{"name": "team", "value": "a"}]
    info = got["executionInfo"]
    assert info["recentJob"] == {
        "id": "nightly:job-1",
        "url": "http://testserver/jobs/nightly:job-1",
    }
    assert "nextRunTime" in info and "endTime" not in info
    job = body(batch.get("/jobs/nightly%3Ajob-1"))
    assert (
        job["priority"],
        job["constraints"]["maxWallClockTime"],
        job["executionInfo"]["poolId"],
    ) == (10, "PT2H", "p")


def test_exists_is_200_or_404(batch):
    batch.post("/jobschedules", CAPTURED)
    assert batch.head("/jobschedules/NIGHTLY").status_code == 200
    assert batch.head("/jobschedules/none").status_code == 404


def test_list_filters_selects_and_pages(batch):
    for i in range(3):
        batch.post("/jobschedules", {**CAPTURED, "id": f"s{i}"})
    batch.post("/jobschedules/s1/disable", headers={"Content-Type": "application/json"})
    got = body(
        batch.get("/jobschedules", params={"$filter": "state eq 'disabled'", "$select": "id,state"})
    )
    assert got["value"] == [{"id": "s1", "state": "disabled"}]
    page = body(batch.get("/jobschedules", params={"maxresults": "2"}))
    assert [s["id"] for s in page["value"]] == ["s0", "s1"] and "odata.nextLink" in page


def test_stats_appear_only_with_expand(batch):
    batch.post("/jobschedules", CAPTURED)
    assert "stats" not in body(batch.get("/jobschedules/nightly"))
    stats = body(batch.get("/jobschedules/nightly", params={"$expand": "stats"}))["stats"]
    assert stats["numSucceededTasks"] == "0" and stats["url"].endswith("/jobschedules/nightly")


def test_list_jobs_from_schedule_lists_only_its_jobs(batch):
    batch.post("/jobschedules", CAPTURED)
    batch.post("/jobs", {"id": "other", "poolInfo": {"poolId": "p"}})
    got = body(batch.get("/jobschedules/nightly/jobs"))
    assert [j["id"] for j in got["value"]] == ["nightly:job-1"]
    assert (
        body(batch.get("/jobschedules/nightly/jobs", params={"$filter": "state eq 'completed'"}))[
            "value"
        ]
        == []
    )


def test_patch_keeps_what_it_does_not_name_and_put_replaces(batch):
    batch.post("/jobschedules", CAPTURED)
    r = batch.patch("/jobschedules/nightly", {"metadata": [{"name": "b", "value": "2"}]})
    assert r.status_code == 200
    got = body(batch.get("/jobschedules/nightly"))
    assert (
        got["metadata"] == [{"name": "b", "value": "2"}]
        and got["jobSpecification"]["priority"] == 10
    )
    r = batch.put(
        "/jobschedules/nightly",
        {
            "schedule": {"recurrenceInterval": "PT2H"},
            "jobSpecification": {"poolInfo": {"poolId": "q"}},
        },
    )
    assert r.status_code == 200
    got = body(batch.get("/jobschedules/nightly"))
    assert "metadata" not in got and got["jobSpecification"] == {"poolInfo": {"poolId": "q"}}


def test_put_without_a_job_specification_is_missing_required_property(batch):
    batch.post("/jobschedules", CAPTURED)
    r = batch.put("/jobschedules/nightly", {"schedule": {}})
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")


def test_disable_and_enable_answer_204(batch):
    batch.post("/jobschedules", CAPTURED)
    r = batch.post("/jobschedules/nightly/disable", headers={"Content-Type": "application/json"})
    assert r.status_code == 204
    assert body(batch.get("/jobschedules/nightly"))["state"] == "disabled"
    assert (
        batch.post(
            "/jobschedules/nightly/enable", headers={"Content-Type": "application/json"}
        ).status_code
        == 204
    )
    assert body(batch.get("/jobschedules/nightly"))["state"] == "active"


def test_terminate_answers_202_and_the_schedule_and_its_job_are_completed(batch):
    batch.post("/jobschedules", CAPTURED)
    r = batch.post("/jobschedules/nightly/terminate", headers={"Content-Type": "application/json"})
    assert r.status_code == 202
    got = body(batch.get("/jobschedules/nightly"))  # what 15.x's poller reads
    assert (got["state"], got["previousState"]) == ("completed", "terminating")
    assert "endTime" in got["executionInfo"] and "nextRunTime" not in got["executionInfo"]
    job = body(batch.get("/jobs/nightly%3Ajob-1"))
    assert (job["state"], job["executionInfo"]["terminateReason"]) == (
        "completed",
        "TerminateJobSchedule",
    )
    r = batch.post("/jobschedules/nightly/terminate", headers={"Content-Type": "application/json"})
    assert (r.status_code, error_code(r)) == (409, "JobScheduleCompleted")


def test_delete_answers_202_and_the_schedule_and_its_jobs_are_gone(batch):
    batch.post("/jobschedules", CAPTURED)
    assert batch.delete("/jobschedules/nightly").status_code == 202
    assert error_code(batch.get("/jobschedules/nightly")) == "JobScheduleNotFound"
    assert error_code(batch.get("/jobs/nightly%3Ajob-1")) == "JobNotFound"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id": "bad id"}, "InvalidPropertyValue"),
        ({"schedule": {"recurrenceInterval": "PT30S"}}, "InvalidPropertyValue"),
        ({"schedule": {"doNotRunUntil": "tomorrow"}}, "InvalidPropertyValue"),
        ({"schedule": {"every": "PT1H"}}, "UnsupportedProperty"),
        ({"jobSpecification": {"poolInfo": {}}}, "MissingRequiredProperty"),
        (
            {"jobSpecification": {"poolInfo": {"poolId": "p"}, "priority": 5000}},
            "InvalidPropertyValue",
        ),
        ({"jobSpecification": {"id": "x", "poolInfo": {"poolId": "p"}}}, "UnsupportedProperty"),
    ],
)
def test_a_bad_add_is_a_batch_400_and_stores_nothing(batch, change, code):
    r = batch.post("/jobschedules", {**CAPTURED, **change})
    assert (r.status_code, error_code(r)) == (400, code)
    assert not JobSchedule.objects.exists() and not Job.objects.exists()


def test_ids_are_shared_between_jobs_and_schedules(batch):
    batch.post("/jobs", {"id": "taken", "poolInfo": {"poolId": "p"}})
    r = batch.post("/jobschedules", {**CAPTURED, "id": "taken"})
    assert (r.status_code, error_code(r)) == (409, "JobWithSameIdExists")
    batch.post("/jobschedules", CAPTURED)
    assert error_code(batch.post("/jobschedules", CAPTURED)) == "JobScheduleExists"
    r = batch.post("/jobs", {"id": "nightly", "poolInfo": {"poolId": "p"}})
    assert (r.status_code, error_code(r)) == (409, "JobScheduleWithSameIdExists")


def test_if_match_with_a_stale_etag_is_412(batch):
    batch.post("/jobschedules", CAPTURED)
    r = batch.post(
        "/jobschedules/nightly/disable",
        headers={"Content-Type": "application/json", "If-Match": "0x8DSTALE"},
    )
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    assert JobSchedule.objects.get().state == "active"


def test_another_accounts_schedule_is_not_found(batch):
    from tasks.operations.job_schedules import add_job_schedule

    add_job_schedule(
        AccountFactory(),
        spec={"id": "theirs", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
    )
    for method, path in (
        ("GET", "/jobschedules/theirs"),
        ("DELETE", "/jobschedules/theirs"),
        ("POST", "/jobschedules/theirs/terminate"),
        ("GET", "/jobschedules/theirs/jobs"),
    ):
        r = batch.request(method, path)
        assert (r.status_code, error_code(r)) == (404, "JobScheduleNotFound"), (method, path)
    assert body(batch.get("/jobschedules"))["value"] == []
    assert JobSchedule.objects.get().state == "active"
