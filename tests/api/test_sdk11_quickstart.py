"""Azure's Python quickstart (Azure-Samples/batch-python-quickstart) as its own
requirements.txt runs it: azure-batch 11.0.0, api-version 2021-06-01.14.0. Its requests, as
that SDK really sent them to a live batchsite, replayed byte for byte: Azure serves that
api-version (every one since 2017-09-01.6.0), so batchsite must too."""

import json
from pathlib import Path

import pytest

from tasks.models import Job, Pool, Task
from tests.api.test_azure_cli import DEV_KEY, replay
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

QUICKSTART = {
    r["name"]: r
    for r in json.loads(
        Path(__file__).with_name("azure_batch_11_quickstart_requests.json").read_text()
    )
}


@pytest.fixture
def devbatch(db):
    return AccountFactory(name="devbatch", primary_key=DEV_KEY)


def send(monkeypatch, name: str):
    assert "api-version=2021-06-01.14.0" in QUICKSTART[name]["uri"]
    return replay(monkeypatch, name, QUICKSTART)


def test_the_quickstart_makes_its_pool_job_and_tasks_and_reads_them(devbatch, monkeypatch):
    r = send(monkeypatch, "pool-add")
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(pool_id="PythonQuickstartPool")
    assert (pool.vm_size, pool.target_dedicated_nodes) == ("STANDARD_DS1_V2", 2)
    r = send(monkeypatch, "job-add")
    assert r.status_code == 201, r.content
    assert Job.objects.get(job_id="PythonQuickstartJob").pool_id == "PythonQuickstartPool"
    r = send(monkeypatch, "task-add-collection")
    assert r.status_code == 200, r.content
    assert sorted((t["taskId"], t["status"]) for t in json.loads(r.content)["value"]) == [
        ("Task0", "success"),
        ("Task1", "success"),
        ("Task2", "success"),
    ]
    assert Task.objects.get(task_id="Task0").spec["resourceFiles"][0]["filePath"] == "taskdata0.txt"
    r = send(monkeypatch, "task-list")
    assert r.status_code == 200, r.content
    assert sorted(t["id"] for t in json.loads(r.content)["value"]) == ["Task0", "Task1", "Task2"]
    r = send(monkeypatch, "task-get")
    assert r.status_code == 200 and json.loads(r.content)["state"] == "active"
    r = send(monkeypatch, "job-delete")
    assert r.status_code == 202, r.content
    r = send(monkeypatch, "pool-delete")
    assert r.status_code == 202, r.content
