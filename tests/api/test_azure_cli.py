"""Requests the Azure CLI (`az batch`, azure-cli 2.91.0, which embeds azure-batch 15.0.0b1
and sends api-version 2024-02-01.19.0) really sent, byte for byte, replayed at the
instant they were signed: its Shared Key signature must verify, and its bodies, which
carry integers as JSON strings, must be judged as the Batch service judges them."""

import json
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client

from tasks.api import auth
from tasks.models import Job, Pool, Task
from tests.conftest import error_code
from tests.factories import AccountFactory, JobFactory

pytestmark = pytest.mark.django_db

CAPTURED = {
    r["name"]: r
    for r in json.loads(Path(__file__).with_name("azure_cli_requests.json").read_text())
}
DEV_KEY = "YmF0Y2hzaXRlLWRldmVsb3BtZW50LWtleS1ub3Qtc2VjcmV0LTAwMDAwMDAwMDA="


@pytest.fixture
def devbatch(db):
    return AccountFactory(name="devbatch", primary_key=DEV_KEY)


def replay(monkeypatch, name: str, requests: dict = CAPTURED):
    """Send the captured request as gunicorn hands it to Django (RAW_URI included), with the
    server's clock at the request's ocp-date."""
    captured = requests[name]
    environ = dict(captured["environ"])
    sent: datetime = parsedate_to_datetime(environ["HTTP_OCP_DATE"])
    monkeypatch.setattr(auth, "timezone", SimpleNamespace(now=lambda: sent))
    content_type = environ.pop("CONTENT_TYPE", "")
    if captured["body"]:
        environ.pop("CONTENT_LENGTH", None)  # the test client sets it from the body (only from one)
    return Client().generic(
        captured["method"],
        captured["uri"],
        data=captured["body"].encode(),
        content_type=content_type,
        RAW_URI=captured["uri"],
        **environ,
    )


def test_a_list_with_filter_and_select_is_authenticated(devbatch, monkeypatch):
    JobFactory(account=devbatch, job_id="clijob3")
    r = replay(monkeypatch, "task-list")
    assert r.status_code == 200, r.content


def test_a_job_with_integers_sent_as_strings_is_added_with_those_integers(devbatch, monkeypatch):
    r = replay(monkeypatch, "job-create")
    assert r.status_code == 201, r.content
    job = Job.objects.get(job_id="clijob")
    assert (job.priority, job.max_parallel_tasks, job.max_task_retry_count) == (5, 2, 1)
    assert job.uses_task_dependencies is True


def test_a_task_with_a_retry_count_sent_as_a_string_is_added(devbatch, monkeypatch):
    JobFactory(account=devbatch, job_id="clijob3")
    r = replay(monkeypatch, "task-create")
    assert r.status_code == 201, r.content
    task = Task.objects.get(task_id="t1")
    assert task.max_task_retry_count == 1
    assert task.spec["environmentSettings"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]


def test_a_task_collection_from_a_json_file_is_added(devbatch, monkeypatch):
    JobFactory(account=devbatch, job_id="clijob3")
    r = replay(monkeypatch, "task-create-json")
    assert r.status_code == 200, r.content
    assert {t["taskId"]: t["status"] for t in json.loads(r.content)["value"]} == {
        "c1": "success",
        "c2": "success",
    }


@pytest.mark.parametrize("name", ["job-set", "job-reset"])
def test_max_parallel_tasks_zero_sent_as_a_string_is_refused_by_patch_and_put(
    devbatch, monkeypatch, name
):
    job = JobFactory(account=devbatch, job_id="clijob3", priority=0)
    r = replay(monkeypatch, name)
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue"), r.content
    job.refresh_from_db()
    assert (job.priority, job.max_parallel_tasks) == (0, -1)


def test_a_pool_with_node_counts_sent_as_strings_is_added(devbatch, monkeypatch):
    r = replay(monkeypatch, "pool-create")
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(pool_id="clipool")
    assert pool.task_slots_per_node == 3
