import json

from tests.conftest import error_code


def test_add_and_get_task_round_trip(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "T1", "commandLine": "/bin/echo hi"})
    assert r.status_code == 201, r.content
    r = batch.get(f"/jobs/{job.job_id}/tasks/t1")
    assert r.status_code == 200, r.content
    body = json.loads(r.content)
    assert body["id"] == "T1" and body["state"] == "active"
    assert r["ETag"] == body["eTag"]


def test_duplicate_is_task_exists(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", {"id": "T1", "commandLine": "x"})
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x"})
    assert r.status_code == 409 and error_code(r) == "TaskExists"
