"""Every Task operation over the wire: status codes, headers and the Batch task JSON
(REFERENCE §2, §6, §7)."""

import json
import re
import uuid
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from django.utils import timezone

from tasks.models import Job, Task
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, JobFactory, SubTaskFactory, TaskFactory

pytestmark = pytest.mark.django_db

INFINITE = "P10675199DT2H48M5.4775807S"
WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
CONTENT_TYPE = "application/json;odata=minimalmetadata"

# Every property of BatchTaskCreateOptions (REFERENCE §7.1), with values a client may send.
FULL = {
    "id": "Full-Task_1",
    "displayName": "  spaced display name ",
    "commandLine": " /bin/sh -c 'echo hi' ",
    "exitConditions": {
        "exitCodes": [
            {"code": 1, "exitOptions": {"jobAction": "terminate", "dependencyAction": "block"}}
        ],
        "exitCodeRanges": [
            {
                "start": 2,
                "end": 5,
                "exitOptions": {"jobAction": "disable", "dependencyAction": "satisfy"},
            }
        ],
        "preProcessingError": {"jobAction": "none"},
        "fileUploadError": {"dependencyAction": "block"},
        "default": {"jobAction": "none", "dependencyAction": "satisfy"},
    },
    "containerSettings": {
        "imageName": "ubuntu:22.04",
        "containerRunOptions": "--rm",
        "registry": {"username": "u", "password": "p", "registryServer": "r.example"},
        "workingDirectory": "taskWorkingDirectory",
        "containerHostBatchBindMounts": [{"source": "Task", "isReadOnly": True}],
    },
    "resourceFiles": [
        {"httpUrl": "https://example.com/a.txt", "filePath": "a.txt", "fileMode": "0644"},
        {"storageContainerUrl": "https://s.example/c", "blobPrefix": "in/"},
        {"autoStorageContainerName": "c"},
    ],
    "outputFiles": [
        {
            "filePattern": "*.txt",
            "destination": {"container": {"containerUrl": "https://s.example/out", "path": "o"}},
            "uploadOptions": {"uploadCondition": "taskcompletion"},
        }
    ],
    "environmentSettings": [
        {"name": "A", "value": " 1 "},
        {"name": "EMPTY", "value": ""},
        {"name": "NOVALUE"},
    ],
    "affinityInfo": {"affinityId": "TVM:node-1"},
    "constraints": {
        "maxWallClockTime": "PT01H00M00S",
        "retentionTime": "P1D",
        "maxTaskRetryCount": 3,
    },
    "requiredSlots": 1,
    "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "admin"}},
    "multiInstanceSettings": {
        "numberOfInstances": 2,
        "coordinationCommandLine": "echo c",
        "commonResourceFiles": [{"httpUrl": "https://example.com/c", "filePath": "c"}],
    },
    "dependsOn": {"taskIds": ["a", "b"], "taskIdRanges": [{"start": 1, "end": 5}]},
    "applicationPackageReferences": [
        {"applicationId": "app", "version": "1.0"},
        {"applicationId": "other"},
    ],
}
READ_ONLY = {
    "url",
    "eTag",
    "lastModified",
    "creationTime",
    "state",
    "stateTransitionTime",
    "executionInfo",
}


@pytest.fixture
def job(account):
    return JobFactory(
        account=account,
        uses_task_dependencies=True,
        on_task_failure=Job.OnTaskFailure.PERFORMEXITOPTIONSJOBACTION,
        max_task_retry_count=2,
    )


def body(response) -> dict:
    assert response["Content-Type"] == CONTENT_TYPE
    return json.loads(response.content)


def no_nulls(value, path="$"):
    if isinstance(value, dict):
        for k, v in value.items():
            assert v is not None, f"{path}.{k} is null"
            no_nulls(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            no_nulls(v, f"{path}[{i}]")


def assert_common_headers(response):
    uuid.UUID(response["request-id"])
    assert response["client-request-id"] == "test-client-id"


def assert_resource_headers(response, task: Task, url: str):
    assert response["ETag"] == task.etag
    assert parsedate_to_datetime(response["Last-Modified"]) == task.last_modified.replace(
        microsecond=0
    )
    assert response["DataServiceId"] == url


def url_of(job, task_id):
    return f"http://testserver/jobs/{job.job_id}/tasks/{task_id}"


# --- add ---------------------------------------------------------------------------------


def test_add_answers_201_with_the_headers_the_sdks_read(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "T1", "commandLine": "x"})
    assert r.status_code == 201 and r.content == b""
    task = Task.objects.get(job=job)
    assert_resource_headers(r, task, url_of(job, "T1"))
    assert_common_headers(r)
    assert r["Location"] == url_of(job, "T1")


def test_every_task_property_round_trips_through_add_and_get(batch, job):
    assert batch.post(f"/jobs/{job.job_id}/tasks", FULL).status_code == 201
    r = batch.get(f"/jobs/{job.job_id}/tasks/{FULL['id']}")
    got = body(r)
    no_nulls(got)
    expected = {k: v for k, v in FULL.items() if k != "constraints"}
    assert {k: v for k, v in got.items() if k in expected} == expected
    assert got["constraints"] == {
        "maxWallClockTime": "PT1H",
        "retentionTime": "P1D",
        "maxTaskRetryCount": 3,
    }
    assert set(got) - set(FULL) == READ_ONLY | {"odata.metadata"}


def test_a_minimal_task_gets_the_default_constraints_and_identity(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x"})
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    # UNCONFIRMED (REFERENCE §15.10): the values echoed when the user set none.
    assert got["constraints"] == {
        "maxWallClockTime": INFINITE,
        "retentionTime": "P7D",
        "maxTaskRetryCount": 2,
    }
    assert got["requiredSlots"] == 1
    assert got["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    for absent in (
        "displayName",
        "exitConditions",
        "resourceFiles",
        "dependsOn",
        "multiInstanceSettings",
        "previousState",
        "previousStateTransitionTime",
        "nodeInfo",
        "stats",
        "affinityInfo",
    ):
        assert absent not in got


@pytest.mark.parametrize(
    ("sent", "emitted"),
    [
        ("PT01H00M00S", "PT1H"),
        ("PT1H", "PT1H"),
        ("P1D", "P1D"),
        ("P2DT03H00M00S", "P2DT3H"),
        ("PT01.5S", "PT1.5S"),
        ("PT05M00S", "PT5M"),
        ("P400D", "P400D"),
        ("PT1H30M", "PT1H30M"),
        ("P", "PT0S"),
        ("P0D", "PT0S"),
        (INFINITE, INFINITE),
        ("P1W", "P7D"),
    ],
)
def test_durations_in_every_form_the_sdks_send_come_back_canonical(batch, job, sent, emitted):
    batch.post(
        f"/jobs/{job.job_id}/tasks",
        {"id": "t1", "commandLine": "x", "constraints": {"maxWallClockTime": sent}},
    )
    assert (
        body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))["constraints"]["maxWallClockTime"]
        == emitted
    )


def test_enums_are_accepted_in_any_case_and_emitted_lowercase(batch, job):
    sent = {
        "id": "t1",
        "commandLine": "x",
        "userIdentity": {"autoUser": {"scope": "Task", "elevationLevel": "Admin"}},
        "exitConditions": {"default": {"jobAction": "Terminate", "dependencyAction": "SATISFY"}},
    }
    batch.post(f"/jobs/{job.job_id}/tasks", sent)
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    assert got["userIdentity"] == {"autoUser": {"scope": "task", "elevationLevel": "admin"}}
    assert got["exitConditions"] == {
        "default": {"jobAction": "terminate", "dependencyAction": "satisfy"}
    }


def test_a_body_with_a_utf8_byte_order_mark_is_accepted(batch, job):
    raw = (
        "\ufeff".encode()
        + json.dumps({"id": "bom", "commandLine": "echo \u00e9t\u00e9 \U0001f600"}).encode()
    )
    assert batch.post(f"/jobs/{job.job_id}/tasks", raw=raw).status_code == 201
    assert (
        body(batch.get(f"/jobs/{job.job_id}/tasks/bom"))["commandLine"]
        == "echo \u00e9t\u00e9 \U0001f600"
    )


def test_authentication_token_settings_round_trip_only_for_the_versions_that_have_them(batch, job):
    sent = {"id": "t1", "commandLine": "x", "authenticationTokenSettings": {"access": ["job"]}}
    assert (
        batch.post(f"/jobs/{job.job_id}/tasks", sent, api_version="2024-02-01.19.0").status_code
        == 201
    )
    old = body(batch.get(f"/jobs/{job.job_id}/tasks/t1", api_version="2024-02-01.19.0"))
    new = body(batch.get(f"/jobs/{job.job_id}/tasks/t1", api_version="2025-06-01"))
    assert old["authenticationTokenSettings"] == {"access": ["job"]}
    assert "authenticationTokenSettings" not in new


def test_add_refuses_a_duplicate_id_in_any_case(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", {"id": "Task", "commandLine": "x"})
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "tASK", "commandLine": "y"})
    assert (r.status_code, error_code(r)) == (409, "TaskExists")
    assert body(r)["message"]["value"].startswith("The specified task already exists.\nRequestId:")
    assert Task.objects.get(job=job).command_line == "x"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ],
)
def test_add_refuses_a_job_that_takes_no_tasks(batch, job, state, code):
    Job.objects.filter(pk=job.pk).update(state=state)
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x"})
    assert (r.status_code, error_code(r)) == (409, code)


@pytest.mark.parametrize(
    ("job_kw", "task", "status", "code"),
    [
        (
            {"uses_task_dependencies": False},
            {"dependsOn": {"taskIds": ["a"]}},
            400,
            "TaskDependenciesNotSpecifiedOnJob",
        ),
        (
            {"uses_task_dependencies": False},
            {"exitConditions": {"default": {"dependencyAction": "block"}}},
            400,
            "InvalidPropertyValue",
        ),
        (
            {},
            {"exitConditions": {"default": {"jobAction": "terminate"}}},
            400,
            "InvalidPropertyValue",
        ),
        (
            {},
            {
                "multiInstanceSettings": {"numberOfInstances": 2, "coordinationCommandLine": "c"},
                "requiredSlots": 2,
            },
            400,
            "InvalidPropertyValue",
        ),
        (
            {"spec": {"jobPreparationTask": {"id": "prep", "commandLine": "x"}}},
            {"id": "Prep"},
            409,
            "TaskIdSameAsJobPreparationTask",
        ),
        (
            {"spec": {"jobReleaseTask": {"commandLine": "x"}}},
            {"id": "jobrelease"},
            409,
            "TaskIdSameAsJobReleaseTask",
        ),
    ],
)
def test_add_refuses_a_task_its_job_does_not_allow(batch, account, job_kw, task, status, code):
    job = JobFactory(account=account, **job_kw)
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x", **task})
    assert (r.status_code, error_code(r)) == (status, code)
    assert not job.tasks.exists()


def test_add_to_a_missing_job_is_job_not_found(batch):
    r = batch.post("/jobs/nojob/tasks", {"id": "t1", "commandLine": "x"})
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


# --- get ---------------------------------------------------------------------------------


def test_get_answers_with_the_task_and_its_headers(batch, job):
    task = TaskFactory(job=job, task_id="T1")
    r = batch.get(f"/jobs/{job.job_id}/tasks/T1")
    got = body(r)
    assert r.status_code == 200
    assert_resource_headers(r, task, url_of(job, "T1"))
    assert_common_headers(r)
    assert got["eTag"] == r["ETag"] and got["url"] == url_of(job, "T1")
    assert got["odata.metadata"] == "http://testserver/$metadata#tasks/@Element"
    # UNCONFIRMED (REFERENCE §15.11): DataServiceVersion is sent, though no SDK reads it.
    assert r["DataServiceVersion"] == "3.0"
    for key in ("creationTime", "lastModified", "stateTransitionTime"):
        assert WIRE_TIME.match(got[key]), got[key]
    assert got["executionInfo"] == {"retryCount": 0, "requeueCount": 0}


def test_get_finds_a_task_by_its_id_in_any_case_and_answers_with_the_stored_case(batch, job):
    # UNCONFIRMED (REFERENCE §15.15): lookups by task id are case-insensitive.
    TaskFactory(job=job, task_id="MixedCase")
    r = batch.get(f"/jobs/{job.job_id.upper()}/tasks/mixedCASE")
    assert r.status_code == 200 and body(r)["id"] == "MixedCase"


def test_get_of_a_missing_task_is_task_not_found(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks/none")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")
    assert body(r)["message"]["lang"] == "en-US"
    assert_common_headers(r)


def test_get_of_a_task_in_a_missing_job_is_job_not_found(batch):
    r = batch.get("/jobs/nojob/tasks/t1")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_a_completed_task_shows_its_execution_and_node(batch, job):
    node = ComputeNodeFactory(node_id="node-7")
    start = timezone.now() - timedelta(minutes=5)
    TaskFactory(
        job=job,
        task_id="done",
        failed=True,
        start_time=start,
        retry_count=2,
        last_retry_time=start,
        requeue_count=1,
        last_requeue_time=start,
        node=node,
        node_name="node-7",
        pool_id="pool",
        affinity_id="TVM:node-7",
        task_root_directory="/d/t",
        previous_state_transition_time=start,
    )
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/done"))
    info = got["executionInfo"]
    assert (info["exitCode"], info["result"], info["retryCount"], info["requeueCount"]) == (
        1,
        "failure",
        2,
        1,
    )
    assert (
        info["failureInfo"]["category"] == "usererror"
        and info["failureInfo"]["code"] == "FailureExitCode"
    )
    for key in ("startTime", "endTime", "lastRetryTime", "lastRequeueTime"):
        assert WIRE_TIME.match(info[key])
    assert (got["state"], got["previousState"]) == ("completed", "running")
    assert WIRE_TIME.match(got["previousStateTransitionTime"])
    assert got["nodeInfo"] == {
        "affinityId": "TVM:node-7",
        "nodeUrl": "http://testserver/pools/pool/nodes/node-7",
        "poolId": "pool",
        "nodeId": "node-7",
        "taskRootDirectory": "/d/t",
        "taskRootDirectoryUrl": f"{url_of(job, 'done')}/files",
    }


def test_a_multi_instance_task_reports_its_primarys_execution_and_node(batch, job):
    task = TaskFactory(
        job=job,
        task_id="mi",
        running=True,
        multi_instance=True,
        node_name="node-1",
        pool_id="pool",
        affinity_id="TVM:node-1",
    )
    SubTaskFactory(task=task, subtask_id=1, node_name="node-2", pool_id="pool")
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/mi"))
    assert got["nodeInfo"]["nodeId"] == "node-1" and got["nodeInfo"]["affinityId"] == "TVM:node-1"
    assert "startTime" in got["executionInfo"]
    assert got["multiInstanceSettings"]["numberOfInstances"] == 2


def test_stats_come_only_when_expanded(batch, job):
    TaskFactory(
        job=job, task_id="t1", succeeded=True, user_cpu_time=timedelta(seconds=1.5), read_iops=5
    )
    plain = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    # UNCONFIRMED (REFERENCE §15.9): stats only with $expand=stats.
    assert "stats" not in plain
    new = body(batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$expand": "stats"}))["stats"]
    old = body(
        batch.get(
            f"/jobs/{job.job_id}/tasks/t1",
            params={"$expand": "stats"},
            api_version="2024-02-01.19.0",
        )
    )["stats"]
    assert set(new) == {
        "url",
        "startTime",
        "lastUpdateTime",
        "userCPUTime",
        "kernelCPUTime",
        "wallClockTime",
        "readIOps",
        "writeIOps",
        "readIOGiB",
        "writeIOGiB",
        "waitTime",
    }
    assert (new["userCPUTime"], new["kernelCPUTime"]) == ("PT1.5S", "PT0S")
    # int64 as a string in 2025-06-01, a number before.
    assert (new["readIOps"], old["readIOps"]) == ("5", 5)


# --- list --------------------------------------------------------------------------------


def test_list_answers_with_the_envelope_in_id_order(batch, job):
    for task_id in ("b", "C", "a"):
        TaskFactory(job=job, task_id=task_id)
    r = batch.get(f"/jobs/{job.job_id}/tasks")
    got = body(r)
    assert r.status_code == 200
    assert got["odata.metadata"] == "http://testserver/$metadata#tasks"
    assert [t["id"] for t in got["value"]] == ["a", "b", "C"]
    assert "odata.nextLink" not in got
    assert_common_headers(r)


def test_list_of_a_job_without_tasks_is_an_empty_value(batch, job):
    assert body(batch.get(f"/jobs/{job.job_id}/tasks"))["value"] == []


def test_list_items_equal_what_get_answers(batch, job):
    batch.post(f"/jobs/{job.job_id}/tasks", FULL)
    listed = body(batch.get(f"/jobs/{job.job_id}/tasks"))["value"][0]
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/{FULL['id']}"))
    got.pop("odata.metadata")
    assert listed == got


def test_list_of_a_missing_job_is_job_not_found(batch):
    r = batch.get("/jobs/nojob/tasks")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_list_pins_its_queries(batch, job, django_assert_num_queries):
    for _ in range(30):
        TaskFactory(job=job, node_name="node-1", pool_id="p", task_root_directory="/d")
    with django_assert_num_queries(3):  # the account, the job, one page
        r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$expand": "stats"})
    assert len(body(r)["value"]) == 30


# --- $filter, end to end -------------------------------------------------------------------


@pytest.fixture
def filter_tasks(job):
    now = timezone.now()
    old = now - timedelta(days=2)
    tasks = {
        "active1": TaskFactory(
            job=job,
            task_id="active1",
            creation_time=old,
            state_transition_time=old,
            last_modified=old,
        ),
        "run-a": TaskFactory(job=job, task_id="run-a", running=True, start_time=old),
        "ok-1": TaskFactory(job=job, task_id="ok-1", succeeded=True, end_time=now),
        "bad-1": TaskFactory(job=job, task_id="bad-1", failed=True, end_time=old, exit_code=3),
        "bad-2": TaskFactory(job=job, task_id="bad-2", failed=True, exit_code=-1),
    }
    return tasks, now - timedelta(days=1)


def listed_ids(batch, job, expression):
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$filter": expression})
    assert r.status_code == 200, r.content
    return sorted(t["id"] for t in body(r)["value"])


def dt(value):
    return "DateTime'" + value.strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("id eq 'ok-1'", ["ok-1"]),
        ("id eq 'OK-1'", ["ok-1"]),
        ("id ne 'ok-1'", ["active1", "bad-1", "bad-2", "run-a"]),
        ("startswith(id,'bad')", ["bad-1", "bad-2"]),
        ("id ge 'ok-1'", ["ok-1", "run-a"]),
        ("id lt 'bad-2'", ["active1", "bad-1"]),
        ("state eq 'active'", ["active1"]),
        ("state ne 'completed'", ["active1", "run-a"]),
        ("state eq 'Running'", ["run-a"]),
        ("executionInfo/exitCode eq 0", ["ok-1"]),
        ("(executionInfo/exitCode lt 0) or (executionInfo/exitCode gt 0)", ["bad-1", "bad-2"]),
        ("executionInfo/exitCode ne 0", ["bad-1", "bad-2"]),
        ("executionInfo/result eq 'Failure'", ["bad-1", "bad-2"]),
        ("executionInfo/result eq 'success'", ["ok-1"]),
        ("state eq 'completed' and executionInfo/result ne 'success'", ["bad-1", "bad-2"]),
    ],
)
def test_list_filters_by_each_plain_property(batch, job, filter_tasks, expression, expected):
    assert listed_ids(batch, job, expression) == expected


def test_list_filters_by_each_time_property(batch, job, filter_tasks):
    _, cut = filter_tasks
    assert listed_ids(batch, job, f"creationTime lt {dt(cut)}") == ["active1"]
    assert listed_ids(batch, job, f"stateTransitionTime lt {dt(cut)}") == ["active1"]
    assert listed_ids(batch, job, f"lastModified lt {dt(cut)}") == ["active1"]
    assert listed_ids(batch, job, f"lastModifiedTime ge {dt(cut)}") == [
        "bad-1",
        "bad-2",
        "ok-1",
        "run-a",
    ]
    assert listed_ids(batch, job, f"executionInfo/startTime lt {dt(cut)}") == ["run-a"]
    assert listed_ids(batch, job, f"executionInfo/endTime gt {dt(cut)}") == ["bad-2", "ok-1"]
    assert listed_ids(batch, job, f"executionInfo/endTime le {dt(cut)}") == ["bad-1"]


@pytest.mark.parametrize(
    "expression",
    [
        "state eq 'deleted'",
        "nosuch eq 1",
        "state gt 'active'",
        "id eq",
        "executionInfo/exitCode eq 'x'",
        "creationTime lt 'yesterday'",
        "((state eq 'active')",
    ],
)
def test_a_bad_filter_is_an_invalid_query_parameter_value(batch, job, expression):
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$filter": expression})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    assert {v["key"]: v["value"] for v in body(r)["values"]}["QueryParameterName"] == "$filter"


# --- update ------------------------------------------------------------------------------


def test_update_answers_200_with_the_new_etag(batch, job):
    task = TaskFactory(job=job, task_id="t1")
    r = batch.put(
        f"/jobs/{job.job_id}/tasks/t1",
        {"constraints": {"maxTaskRetryCount": 2, "maxWallClockTime": "PT05M00S"}},
    )
    assert r.status_code == 200 and r.content == b""
    task.refresh_from_db()
    assert task.etag != "0x8D0000000000003"
    assert_resource_headers(r, task, url_of(job, "t1"))
    assert_common_headers(r)
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    assert got["eTag"] == r["ETag"]
    assert got["constraints"] == {
        "maxWallClockTime": "PT5M",
        "retentionTime": "P7D",
        "maxTaskRetryCount": 2,
    }


def test_update_with_an_empty_body_restores_the_defaults(batch, job):
    TaskFactory(
        job=job,
        task_id="t1",
        max_task_retry_count=5,
        max_wall_clock_time=timedelta(hours=1),
        retention_time=timedelta(days=1),
    )
    assert batch.put(f"/jobs/{job.job_id}/tasks/t1", {}).status_code == 200
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    assert got["constraints"] == {
        "maxWallClockTime": INFINITE,
        "retentionTime": "P7D",
        "maxTaskRetryCount": 2,
    }


def test_update_accepts_the_whole_task_a_15x_client_sends_back_and_changes_only_constraints(
    batch, job
):
    batch.post(f"/jobs/{job.job_id}/tasks", FULL)
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/{FULL['id']}"))
    got["constraints"]["maxTaskRetryCount"] = 7
    got["commandLine"] = "changed"
    r = batch.put(f"/jobs/{job.job_id}/tasks/{FULL['id']}", got)
    assert r.status_code == 200, r.content
    after = body(batch.get(f"/jobs/{job.job_id}/tasks/{FULL['id']}"))
    assert (
        after["constraints"]["maxTaskRetryCount"] == 7
        and after["commandLine"] == FULL["commandLine"]
    )


def test_update_of_a_completed_task_is_task_completed(batch, job):
    TaskFactory(job=job, task_id="t1", succeeded=True)
    r = batch.put(f"/jobs/{job.job_id}/tasks/t1", {"constraints": {"maxTaskRetryCount": 1}})
    assert (r.status_code, error_code(r)) == (409, "TaskCompleted")


def test_update_of_a_missing_task_is_task_not_found(batch, job):
    r = batch.put(f"/jobs/{job.job_id}/tasks/none", {})
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


# --- delete ------------------------------------------------------------------------------


def test_delete_answers_200_with_an_empty_body(batch, job):
    TaskFactory(job=job, task_id="t1", running=True)
    r = batch.delete(f"/jobs/{job.job_id}/tasks/T1")
    assert r.status_code == 200 and r.content == b""
    assert_common_headers(r)
    assert not job.tasks.exists()
    r = batch.get(f"/jobs/{job.job_id}/tasks/t1")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


def test_delete_of_a_missing_task_is_task_not_found(batch, job):
    r = batch.delete(f"/jobs/{job.job_id}/tasks/none")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


def test_delete_in_a_job_being_deleted_is_job_being_deleted(batch, job):
    TaskFactory(job=job, task_id="t1")
    Job.objects.filter(pk=job.pk).update(state=Job.State.DELETING)
    r = batch.delete(f"/jobs/{job.job_id}/tasks/t1")
    assert (r.status_code, error_code(r)) == (409, "JobBeingDeleted")


# --- terminate and reactivate ------------------------------------------------------------


def test_terminate_answers_204_and_the_task_is_completed(batch, job):
    task = TaskFactory(job=job, task_id="t1", running=True)
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate")
    assert r.status_code == 204 and r.content == b""
    task.refresh_from_db()
    assert_resource_headers(r, task, url_of(job, "t1"))
    assert_common_headers(r)
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    assert (got["state"], got["previousState"], got["executionInfo"]["result"]) == (
        "completed",
        "running",
        "failure",
    )
    # UNCONFIRMED (REFERENCE §15.7): failureInfo TaskEnded after a user terminate.
    assert got["executionInfo"]["failureInfo"]["code"] == "TaskEnded"


@pytest.mark.parametrize("trait", ["succeeded", "failed"])
def test_terminate_of_a_completed_task_is_task_completed(batch, job, trait):
    TaskFactory(job=job, task_id="t1", **{trait: True})
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate")
    assert (r.status_code, error_code(r)) == (409, "TaskCompleted")
    assert body(r)["message"]["value"].startswith(
        "The specified task is already in a completed state."
    )


def test_terminate_in_a_job_being_deleted_is_job_being_deleted(batch, job):
    TaskFactory(job=job, task_id="t1")
    Job.objects.filter(pk=job.pk).update(state=Job.State.DELETING)
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate")
    assert (r.status_code, error_code(r)) == (409, "JobBeingDeleted")


def test_terminate_of_a_missing_task_is_task_not_found(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/tasks/none/terminate")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


def test_reactivate_answers_204_and_the_task_is_active_without_its_last_run(batch, job):
    task = TaskFactory(job=job, task_id="t1", failed=True, retry_count=2)
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/reactivate")
    assert r.status_code == 204 and r.content == b""
    task.refresh_from_db()
    assert_resource_headers(r, task, url_of(job, "t1"))
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1"))
    assert (got["state"], got["previousState"]) == ("active", "completed")
    assert got["executionInfo"] == {"retryCount": 0, "requeueCount": 0}


@pytest.mark.parametrize(
    ("trait", "job_state", "code"),
    [
        ({}, "active", "TaskNotCompleted"),
        ({"running": True}, "active", "TaskNotCompleted"),
        ({"succeeded": True}, "active", "TaskSucceeded"),
        ({"failed": True}, "completed", "JobCompleted"),
        ({"failed": True}, "terminating", "JobBeingTerminated"),
        ({"failed": True}, "deleting", "JobBeingDeleted"),
    ],
)
def test_reactivate_refusals_are_409_with_their_codes(batch, job, trait, job_state, code):
    TaskFactory(job=job, task_id="t1", **trait)
    Job.objects.filter(pk=job.pk).update(state=job_state)
    r = batch.post(f"/jobs/{job.job_id}/tasks/t1/reactivate")
    assert (r.status_code, error_code(r)) == (409, code)


def test_terminate_and_reactivate_accept_the_14x_empty_json_body(batch, job):
    TaskFactory(job=job, task_id="t1")
    headers = {"Content-Type": "application/json; odata=minimalmetadata; charset=utf-8"}
    assert batch.post(f"/jobs/{job.job_id}/tasks/t1/terminate", headers=headers).status_code == 204
    assert batch.post(f"/jobs/{job.job_id}/tasks/t1/reactivate", headers=headers).status_code == 204


# --- subtasks ----------------------------------------------------------------------------


def test_subtasks_of_a_task_that_is_not_multi_instance_are_an_empty_collection(batch, job):
    TaskFactory(job=job, task_id="t1")
    r = batch.get(f"/jobs/{job.job_id}/tasks/t1/subtasksinfo")
    assert r.status_code == 200 and body(r)["value"] == []


def test_subtasks_of_a_multi_instance_task_come_in_one_page(batch, job):
    task = TaskFactory(job=job, task_id="mi", multi_instance=True)
    start = timezone.now()
    SubTaskFactory(
        task=task,
        subtask_id=2,
        state="completed",
        previous_state="running",
        exit_code=0,
        result="success",
        start_time=start,
        end_time=start,
        node_name="node-2",
        pool_id="p",
        previous_state_transition_time=start,
    )
    SubTaskFactory(task=task, subtask_id=1, node_name="node-1", pool_id="p")
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo"))
    no_nulls(got)
    assert [s["id"] for s in got["value"]] == [1, 2]
    first, second = got["value"]
    assert first["state"] == "running" and "previousState" not in first
    assert first["nodeInfo"] == {
        "affinityId": "TVM:node-1",
        "nodeUrl": "http://testserver/pools/p/nodes/node-1",
        "poolId": "p",
        "nodeId": "node-1",
        "taskRootDirectoryUrl": f"http://testserver/pools/p/nodes/node-1/files/workitems/{job.job_id}/job-1/mi",
    }
    assert (second["state"], second["previousState"], second["exitCode"], second["result"]) == (
        "completed",
        "running",
        0,
        "success",
    )
    assert "odata.nextLink" not in got


def test_subtasks_honour_select(batch, job):
    SubTaskFactory(task=TaskFactory(job=job, task_id="mi", multi_instance=True), subtask_id=1)
    got = body(
        batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo", params={"$select": "id,state"})
    )
    assert got["value"] == [{"id": 1, "state": "running"}]


def test_subtasks_of_a_missing_task_is_task_not_found(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks/none/subtasksinfo")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


def test_subtasks_pin_their_queries(batch, job, django_assert_num_queries):
    task = TaskFactory(job=job, task_id="mi", multi_instance=True)
    for i in range(1, 8):
        SubTaskFactory(task=task, subtask_id=i)
    with django_assert_num_queries(3):  # the account, the job with the task, the subtasks
        batch.get(f"/jobs/{job.job_id}/tasks/mi/subtasksinfo")


def test_get_task_pins_its_queries(batch, job, django_assert_num_queries):
    TaskFactory(job=job, task_id="t1")
    with django_assert_num_queries(2):  # the account, the job with the task
        r = batch.get(f"/jobs/{job.job_id}/tasks/T1")
    assert (r.status_code, r.json()["id"]) == (200, "t1")


def test_a_task_of_another_job_with_the_same_id_is_not_found(batch, job):
    other = JobFactory(account=job.account, job_id="other")
    TaskFactory(job=other, task_id="only-there")
    r = batch.get(f"/jobs/{job.job_id}/tasks/only-there")
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")
    r = batch.get("/jobs/nosuchjob/tasks/only-there")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_json_answers_carry_a_policy_that_lets_nothing_load(batch, job):
    TaskFactory(job=job, task_id="t1")
    for r in (
        batch.get(f"/jobs/{job.job_id}/tasks/t1"),
        batch.get(f"/jobs/{job.job_id}/tasks/nosuch"),
    ):
        assert r["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert r["X-Content-Type-Options"] == "nosniff"


# --- request ids -------------------------------------------------------------------------


def test_each_response_has_its_own_request_id_and_echoes_the_client_request_id(batch, job):
    first = batch.get(f"/jobs/{job.job_id}/tasks")
    second = batch.get(f"/jobs/{job.job_id}/tasks", headers={"client-request-id": "mine-123"})
    assert first["request-id"] != second["request-id"]
    assert second["client-request-id"] == "mine-123"


def test_an_error_body_carries_the_request_id_of_its_response(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks/none")
    assert f"\nRequestId:{r['request-id']}\nTime:" in body(r)["message"]["value"]
