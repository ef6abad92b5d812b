"""What Azure's published REST spec (2025-06-01 BatchService.json) declares and a replay of
it found missing (issue 8, item 16): list ETag/Last-Modified headers, Add Task Collection's
200 headers, an unknown top-level property in its body, the subtask nodeInfo, and a
schema that generates without errors."""

import json
from email.utils import parsedate_to_datetime

import pytest
from django.utils import timezone

from tasks.models import Task
from tests.conftest import error_code
from tests.factories import SubTaskFactory, TaskFactory

pytestmark = pytest.mark.django_db

VERSIONS = ["2024-02-01.19.0", "2025-06-01"]


def http_time(response, name="Last-Modified"):
    return parsedate_to_datetime(response[name])


@pytest.mark.parametrize("version", VERSIONS)
def test_list_tasks_has_an_etag_and_last_modified_that_follow_its_tasks(batch, job, version):
    TaskFactory(job=job, task_id="a")
    b = TaskFactory(job=job, task_id="b")
    first = batch.get(f"/jobs/{job.job_id}/tasks", api_version=version)
    assert first.status_code == 200 and first["ETag"]
    assert http_time(first) == b.last_modified.replace(microsecond=0)
    assert batch.get(f"/jobs/{job.job_id}/tasks", api_version=version)["ETag"] == first["ETag"]
    batch.post(f"/jobs/{job.job_id}/tasks/b/terminate", api_version=version)
    second = batch.get(f"/jobs/{job.job_id}/tasks", api_version=version)
    assert second["ETag"] != first["ETag"]
    assert http_time(second) >= http_time(first)


def test_an_empty_task_list_has_the_headers_too(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks")
    assert r["ETag"] and http_time(r) == job.last_modified.replace(microsecond=0)


def test_each_page_has_its_own_etag(batch, job):
    for i in range(4):
        TaskFactory(job=job, task_id=f"t{i}")
    page1 = batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": 2})
    link = json.loads(page1.content)["odata.nextLink"]
    page2 = batch.get(link.split("testserver", 1)[1], api_version=None)
    assert page2.status_code == 200 and page1["ETag"] != page2["ETag"]


def test_list_subtasks_has_an_etag_and_last_modified(batch, job):
    task = TaskFactory(job=job, task_id="mi", multi_instance=True)
    sub = SubTaskFactory(task=task, subtask_id=1, node_name="n1", pool_id="p")
    first = batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo")
    assert first.status_code == 200 and first["ETag"]
    assert http_time(first) == max(task.last_modified, sub.state_transition_time).replace(
        microsecond=0
    )
    sub.state, sub.state_transition_time = "completed", timezone.now()
    sub.save()
    assert batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo")["ETag"] != first["ETag"]


@pytest.mark.parametrize("version", VERSIONS)
def test_add_task_collection_answers_200_with_an_etag_and_last_modified(batch, job, version):
    r = batch.post(
        f"/jobs/{job.job_id}/addtaskcollection",
        {"value": [{"id": "a", "commandLine": "x"}, {"id": "b", "commandLine": "x"}]},
        api_version=version,
    )
    assert r.status_code == 200 and r["ETag"]
    newest = max(Task.objects.filter(job=job).values_list("last_modified", flat=True))
    assert http_time(r) == newest.replace(microsecond=0)


def test_an_unknown_top_level_property_of_a_collection_body_is_refused_whole(batch, job):
    r = batch.post(
        f"/jobs/{job.job_id}/addtaskcollection",
        {"value": [{"id": "a", "commandLine": "x"}], "bogus": 1},
    )
    assert (r.status_code, error_code(r)) == (400, "UnsupportedProperty"), r.content
    assert {v["key"]: v["value"] for v in json.loads(r.content)["values"]} == {
        "PropertyName": "bogus"
    }
    assert not job.tasks.exists()


def test_an_unknown_top_level_property_of_an_item_fails_that_task_as_add_task_would(batch, job):
    r = batch.post(
        f"/jobs/{job.job_id}/addtaskcollection",
        {
            "value": [
                {"id": "good", "commandLine": "x"},
                {"id": "bad", "commandLine": "x", "bogus": 1},
            ]
        },
    )
    results = {t["taskId"]: t for t in json.loads(r.content)["value"]}
    assert results["good"]["status"] == "success"
    assert (results["bad"]["status"], results["bad"]["error"]["code"]) == (
        "clienterror",
        "UnsupportedProperty",
    )
    single = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "bad2", "commandLine": "x", "bogus": 1})
    assert error_code(single) == "UnsupportedProperty"


def test_a_subtask_node_info_has_its_affinity_id_and_root_directory_url(batch, job):
    task = TaskFactory(job=job, task_id="mi", multi_instance=True)
    SubTaskFactory(
        task=task,
        subtask_id=1,
        node_name="n1",
        pool_id="p",
        task_root_directory=f"/data/nodes/a/p/n1/workitems/{job.job_id}/job-1/mi",
    )
    (sub,) = json.loads(batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo").content)["value"]
    assert sub["nodeInfo"] == {
        "affinityId": "TVM:n1",
        "nodeUrl": "http://testserver/pools/p/nodes/n1",
        "poolId": "p",
        "nodeId": "n1",
        "taskRootDirectory": f"/data/nodes/a/p/n1/workitems/{job.job_id}/job-1/mi",
        "taskRootDirectoryUrl": f"http://testserver/pools/p/nodes/n1/files/workitems/{job.job_id}/job-1/mi",
    }


def test_the_openapi_schema_generates_without_an_error(client, capsys):
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()  # it reports each problem once per process
    r = client.get("/openapi.json")
    assert r.status_code == 200
    captured = capsys.readouterr()
    assert "Error" not in captured.err + captured.out, captured.err
    assert not GENERATOR_STATS._error_cache
