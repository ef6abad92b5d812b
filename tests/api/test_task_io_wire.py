"""resourceFiles and outputFiles on the wire: what batchsite cannot do (managed identities)
is refused when the task is added, with a Batch error that says so, and an output file
must say where it goes and when."""

from __future__ import annotations

import json

import pytest

from tasks.models import Pool, Task
from tests.conftest import error_code
from tests.factories import JobFactory

OUT = {
    "filePattern": "*.txt",
    "destination": {"container": {"containerUrl": "https://s.example/out"}},
    "uploadOptions": {"uploadCondition": "TaskSuccess"},
}


@pytest.fixture
def job(account):
    return JobFactory(account=account)


def values(response) -> dict:
    return {v["key"]: v["value"] for v in json.loads(response.content).get("values", [])}


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (
            {
                "resourceFiles": [
                    {
                        "storageContainerUrl": "https://s.example/c",
                        "identityReference": {"resourceId": "/i"},
                    }
                ]
            },
            "resourceFiles[0].identityReference",
        ),
        (
            {
                "outputFiles": [
                    {
                        **OUT,
                        "destination": {
                            "container": {
                                "containerUrl": "https://s.example/out",
                                "identityReference": {"resourceId": "/i"},
                            }
                        },
                    }
                ]
            },
            "outputFiles[0].destination.container.identityReference",
        ),
        (
            {
                "multiInstanceSettings": {
                    "numberOfInstances": 2,
                    "coordinationCommandLine": "true",
                    "commonResourceFiles": [
                        {
                            "httpUrl": "https://s.example/a",
                            "filePath": "a",
                            "identityReference": {"resourceId": "/i"},
                        }
                    ],
                }
            },
            "multiInstanceSettings.commonResourceFiles[0].identityReference",
        ),
    ],
)
def test_a_managed_identity_is_refused_at_add_time_saying_why(batch, job, spec, where):
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "true", **spec})
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert values(r)["PropertyName"] == where
    assert "managed identities" in values(r)["Reason"]
    assert not Task.objects.filter(job=job).exists()


def test_a_start_task_with_a_managed_identity_is_refused_too(batch):
    r = batch.post(
        "/pools",
        {
            "id": "p1",
            "vmSize": "local",
            "startTask": {
                "commandLine": "true",
                "resourceFiles": [
                    {"autoStorageContainerName": "c", "identityReference": {"resourceId": "/i"}}
                ],
            },
        },
    )
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert "managed identities" in values(r)["Reason"]
    assert not Pool.objects.filter(pool_id="p1").exists()


@pytest.mark.parametrize(
    ("broken", "code", "where"),
    [
        (
            {"destination": {"container": {}}},
            "MissingRequiredProperty",
            "outputFiles[0].destination.container.containerUrl",
        ),
        (
            {"uploadOptions": {}},
            "MissingRequiredProperty",
            "outputFiles[0].uploadOptions.uploadCondition",
        ),
        (
            {"uploadOptions": {"uploadCondition": "always"}},
            "InvalidPropertyValue",
            "outputFiles[0].uploadOptions.uploadCondition",
        ),
    ],
)
def test_an_output_file_must_say_where_and_when(batch, job, broken, code, where):
    r = batch.post(
        f"/jobs/{job.job_id}/tasks",
        {"id": "t1", "commandLine": "true", "outputFiles": [{**OUT, **broken}]},
    )
    assert (r.status_code, error_code(r)) == (400, code)
    assert values(r)["PropertyName"] == where


def test_an_http_url_needs_a_file_path(batch, job):
    r = batch.post(
        f"/jobs/{job.job_id}/tasks",
        {"id": "t1", "commandLine": "true", "resourceFiles": [{"httpUrl": "https://s.example/a"}]},
    )
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")
    assert values(r)["PropertyName"] == "resourceFiles[0].filePath"


def test_the_upload_condition_is_stored_as_batch_spells_it(batch, job):
    assert (
        batch.post(
            f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "true", "outputFiles": [OUT]}
        ).status_code
        == 201
    )
    got = json.loads(batch.get(f"/jobs/{job.job_id}/tasks/t1").content)
    assert got["outputFiles"][0]["uploadOptions"] == {"uploadCondition": "tasksuccess"}
