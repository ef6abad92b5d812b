"""Add Task Collection over the wire (REFERENCE §6.2)."""

import json

import pytest

from tasks.models import Job, Task
from tests.conftest import error_code
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024


def tasks(*ids, **extra):
    return [{"id": i, "commandLine": "/bin/true", **extra} for i in ids]


def post(batch, job, value):
    return batch.post(f"/jobs/{job.job_id}/addtaskcollection", {"value": value})


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    got = json.loads(response.content)
    assert got["odata.metadata"] == "http://testserver/$metadata#taskaddresult"
    return got["value"]


def verdicts(response):
    return [(r["taskId"], r["status"], r.get("error", {}).get("code")) for r in results(response)]


def test_adds_100_tasks_and_answers_success_for_each(batch, job):
    r = post(batch, job, tasks(*[f"t{i:03d}" for i in range(100)]))
    got = results(r)
    assert r["request-id"] and r["client-request-id"] == "test-client-id"
    assert [x["status"] for x in got] == ["success"] * 100
    stored = {t.task_id: t for t in Task.objects.filter(job=job)}
    assert len(stored) == 100
    first = got[0]
    assert set(first) == {"status", "taskId", "eTag", "lastModified", "location"}
    assert first["eTag"] == stored[first["taskId"]].etag
    assert first["location"] == f"http://testserver/jobs/{job.job_id}/tasks/{first['taskId']}"
    assert first["lastModified"].endswith("Z")


def test_101_tasks_are_refused_whole(batch, job):
    r = post(batch, job, tasks(*[f"t{i}" for i in range(101)]))
    # UNCONFIRMED (REFERENCE §15.2): the code of the 400.
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert not Task.objects.filter(job=job).exists()


def sized_body(size: int) -> bytes:
    """A collection body of exactly `size` bytes (100 tasks, padded command lines)."""
    value = tasks(*[f"t{i:03d}" for i in range(100)])
    raw = json.dumps({"value": value}).encode()
    per_task, extra = divmod(size - len(raw), 100)
    for i, task in enumerate(value):
        task["commandLine"] += "x" * (per_task + (extra if i == 0 else 0))
    raw = json.dumps({"value": value}).encode()
    assert len(raw) == size
    return raw


def test_a_body_of_1_mb_is_request_body_too_large(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", raw=sized_body(LIMIT))
    assert (r.status_code, error_code(r)) == (413, "RequestBodyTooLarge")
    assert not Task.objects.filter(job=job).exists()


def test_a_body_just_under_1_mb_is_accepted(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", raw=sized_body(LIMIT - 1))
    assert {x["status"] for x in results(r)} == {"success"}


def test_a_body_over_the_servers_upload_limit_is_request_body_too_large_too(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", raw=b"{" + b" " * (3 * LIMIT) + b"}")
    assert (r.status_code, error_code(r)) == (413, "RequestBodyTooLarge")


def test_mixed_good_and_bad_tasks_each_get_their_own_lowercase_verdict(batch, job):
    TaskFactory(job=job, task_id="Existing")
    value = [
        *tasks("good-1"),
        *tasks("EXISTING"),
        {"id": "bad id!", "commandLine": "x"},
        {"id": "no-command"},
        {"id": "unknown-prop", "commandLine": "x", "color": "blue"},
        *tasks("deps", dependsOn={"taskIds": ["good-1"]}),
        {"id": "wrong-type", "commandLine": "x", "requiredSlots": "two"},
        "not an object",
        *tasks("good-2"),
    ]
    assert verdicts(post(batch, job, value)) == [
        ("good-1", "success", None),
        ("EXISTING", "clienterror", "TaskExists"),
        ("bad id!", "clienterror", "InvalidPropertyValue"),
        ("no-command", "clienterror", "MissingRequiredProperty"),
        ("unknown-prop", "clienterror", "UnsupportedProperty"),
        ("deps", "clienterror", "TaskDependenciesNotSpecifiedOnJob"),
        ("wrong-type", "clienterror", "InvalidRequestBody"),
        ("", "clienterror", "InvalidRequestBody"),
        ("good-2", "success", None),
    ]
    assert sorted(Task.objects.filter(job=job).values_list("task_id", flat=True)) == [
        "Existing",
        "good-1",
        "good-2",
    ]
    job.refresh_from_db()
    assert job.active_count == 3


def test_an_error_entry_is_a_batch_error_without_metadata(batch, job):
    TaskFactory(job=job, task_id="t1")
    (entry,) = results(post(batch, job, tasks("t1")))
    assert set(entry) == {"status", "taskId", "error"}
    assert set(entry["error"]) == {"code", "message"}
    assert entry["error"]["message"]["value"].startswith(
        "The specified task already exists.\nRequestId:"
    )


def test_duplicates_within_one_request_keep_the_first(batch, job):
    # UNCONFIRMED (REFERENCE §6.2): the first succeeds, later ones get TaskExists.
    r = post(batch, job, tasks("dup", "other", "DUP"))
    assert verdicts(r) == [
        ("dup", "success", None),
        ("other", "success", None),
        ("DUP", "clienterror", "TaskExists"),
    ]
    assert Task.objects.get(job=job, id_key="dup").task_id == "dup"


def test_a_replay_with_the_same_ids_creates_no_duplicate(batch, job):
    value = tasks("a", "b", "c")
    post(batch, job, value)
    again = post(batch, job, value)
    assert {(s, c) for _, s, c in verdicts(again)} == {("clienterror", "TaskExists")}
    assert Task.objects.filter(job=job).count() == 3


def test_an_empty_collection_is_refused(batch, job):
    # UNCONFIRMED (REFERENCE §6.2): 400 MissingRequiredProperty for an empty `value`.
    r = post(batch, job, [])
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")


@pytest.mark.parametrize(
    "payload", [{}, {"value": "x"}, {"value": {"id": "t"}}, [{"id": "t", "commandLine": "x"}]]
)
def test_a_body_without_a_value_array_is_an_invalid_request_body(batch, job, payload):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", payload)
    assert (r.status_code, error_code(r)) == (400, "InvalidRequestBody")


def test_a_body_that_is_not_json_is_an_invalid_request_body(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", raw=b'{"value": [')
    assert (r.status_code, error_code(r)) == (400, "InvalidRequestBody")


def test_a_missing_job_is_job_not_found(batch):
    r = batch.post("/jobs/nojob/addtaskcollection", {"value": tasks("a")})
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_a_job_that_takes_no_tasks_refuses_the_whole_request(batch, job, state, code):
    Job.objects.filter(pk=job.pk).update(state=state)
    r = post(batch, job, tasks("a"))
    assert (r.status_code, error_code(r)) == (409, code)
    assert not Task.objects.filter(job=job).exists()


def test_added_tasks_read_back_as_sent(batch, job):
    sent = {
        "id": "Full",
        "commandLine": " run me ",
        "displayName": "d",
        "requiredSlots": 2,
        "environmentSettings": [{"name": "A", "value": "1"}],
        "constraints": {"maxWallClockTime": "PT05M00S", "maxTaskRetryCount": 1},
    }
    assert verdicts(post(batch, job, [sent])) == [("Full", "success", None)]
    got = json.loads(batch.get(f"/jobs/{job.job_id}/tasks/Full").content)
    assert {
        k: got[k]
        for k in ("id", "commandLine", "displayName", "requiredSlots", "environmentSettings")
    } == {k: v for k, v in sent.items() if k != "constraints"}
    assert got["constraints"]["maxWallClockTime"] == "PT5M"
