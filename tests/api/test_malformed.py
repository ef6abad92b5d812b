"""Malformed requests: each gets a Batch error body with the right status and code, never a
500, and never a partial write (REFERENCE §6.1, §10)."""

import json

import pytest

from tasks.models import Job, Pool, Task
from tests.factories import JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db

OK = {"id": "t-new", "commandLine": "/bin/true"}


def task_with(**changes):
    return {**OK, **changes}


def nested(depth: int) -> bytes:
    return (
        b'{"id": "t-new", "commandLine": "x", "containerSettings": {"imageName": "i", "registry": '
        + (b'{"a": ' * depth)
        + b"1"
        + b"}" * depth
        + b"}}"
    )


# (name, body) for Add Task: body is JSON-able, or bytes sent as they are.
ADD_TASK = [
    # not JSON, or not an object
    ("not json", b"{not json", 400, "InvalidRequestBody"),
    ("truncated", b'{"id": "t-new", ', 400, "InvalidRequestBody"),
    ("empty body", b"", 400, "InvalidRequestBody"),
    ("invalid utf-8", b'{"id": "t-new", "commandLine": "\xff\xfe"}', 400, "InvalidRequestBody"),
    ("json array", [OK], 400, "InvalidRequestBody"),
    ("json string", "task", 400, "InvalidRequestBody"),
    ("json number", 5, 400, "InvalidRequestBody"),
    ("json null", None, 400, "InvalidRequestBody"),
    (
        "NaN",
        b'{"id": "t-new", "commandLine": "x", "containerSettings": {"imageName": "i", "registry": {"a": NaN}}}',
        400,
        "InvalidRequestBody",
    ),
    (
        "Infinity",
        b'{"id": "t-new", "commandLine": "x", "outputFiles": [{"filePattern": "*", '
        b'"destination": {"size": Infinity}, "uploadOptions": {}}]}',
        400,
        "InvalidRequestBody",
    ),
    (
        "lone surrogate",
        b'{"id": "t-new", "commandLine": "echo \\ud800"}',
        400,
        "InvalidRequestBody",
    ),
    ("NUL character", b'{"id": "t-new", "commandLine": "echo \\u0000"}', 400, "InvalidRequestBody"),
    ("nested beyond the parser", nested(100_000), 400, "InvalidRequestBody"),
    ("nested beyond any batch body", nested(40), 400, "InvalidRequestBody"),
    # wrong JSON types
    ("id is a number", task_with(id=5), 400, "InvalidRequestBody"),
    ("commandLine is a list", task_with(commandLine=["a"]), 400, "InvalidRequestBody"),
    (
        "requiredSlots is a decimal string",
        task_with(requiredSlots="2.0"),
        400,
        "InvalidRequestBody",
    ),
    ("requiredSlots is a boolean", task_with(requiredSlots=True), 400, "InvalidRequestBody"),
    ("requiredSlots is a float", task_with(requiredSlots=1.5), 400, "InvalidRequestBody"),
    ("constraints is a string", task_with(constraints="none"), 400, "InvalidRequestBody"),
    (
        "maxTaskRetryCount is a word",
        task_with(constraints={"maxTaskRetryCount": "three"}),
        400,
        "InvalidRequestBody",
    ),
    (
        "maxWallClockTime is a number",
        task_with(constraints={"maxWallClockTime": 60}),
        400,
        "InvalidRequestBody",
    ),
    (
        "environmentSettings is an object",
        task_with(environmentSettings={"A": "1"}),
        400,
        "InvalidRequestBody",
    ),
    (
        "an environment setting is a string",
        task_with(environmentSettings=["A=1"]),
        400,
        "InvalidRequestBody",
    ),
    ("displayName is a number", task_with(displayName=5), 400, "InvalidRequestBody"),
    (
        "exit code is an exponent",
        task_with(exitConditions={"exitCodes": [{"code": "1e0", "exitOptions": {}}]}),
        400,
        "InvalidRequestBody",
    ),
    (
        "jobAction is a number",
        task_with(exitConditions={"default": {"jobAction": 1}}),
        400,
        "InvalidRequestBody",
    ),
    ("taskIds is a string", task_with(dependsOn={"taskIds": "a"}), 400, "InvalidRequestBody"),
    (
        "a dependency id is a number",
        task_with(dependsOn={"taskIds": [1]}),
        400,
        "InvalidRequestBody",
    ),
    (
        "resourceFiles is an object",
        task_with(resourceFiles={"httpUrl": "x"}),
        400,
        "InvalidRequestBody",
    ),
    ("userIdentity is a list", task_with(userIdentity=[]), 400, "InvalidRequestBody"),
    (
        "registry is a list",
        task_with(containerSettings={"imageName": "i", "registry": []}),
        400,
        "InvalidRequestBody",
    ),
    (
        "numberOfInstances is a float",
        task_with(multiInstanceSettings={"numberOfInstances": 2.5}),
        400,
        "InvalidRequestBody",
    ),
    # bad values
    ("id with a space", task_with(id="bad id"), 400, "InvalidPropertyValue"),
    ("id with a slash", task_with(id="a/b"), 400, "InvalidPropertyValue"),
    ("id with a dot", task_with(id="a.b"), 400, "InvalidPropertyValue"),
    ("id with an accent", task_with(id="t\u00e9"), 400, "InvalidPropertyValue"),
    ("id with padding", task_with(id=" t1 "), 400, "InvalidPropertyValue"),
    ("id with a trailing newline", task_with(id="t1\n"), 400, "InvalidPropertyValue"),
    (
        "dependency id with a trailing newline",
        task_with(dependsOn={"taskIds": ["a\n"]}),
        400,
        "InvalidPropertyValue",
    ),
    ("empty id", task_with(id=""), 400, "InvalidPropertyValue"),
    ("65-character id", task_with(id="x" * 65), 400, "InvalidPropertyValue"),
    ("null id", task_with(id=None), 400, "InvalidPropertyValue"),
    ("empty commandLine", task_with(commandLine=""), 400, "InvalidPropertyValue"),
    ("1025-character displayName", task_with(displayName="d" * 1025), 400, "InvalidPropertyValue"),
    (
        "negative duration",
        task_with(constraints={"maxWallClockTime": "-PT1H"}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "negative duration part",
        task_with(constraints={"retentionTime": "PT-5M"}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "duration in words",
        task_with(constraints={"maxWallClockTime": "1 hour"}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "duration without parts",
        task_with(constraints={"maxWallClockTime": "PT"}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "retry count below -1",
        task_with(constraints={"maxTaskRetryCount": -2}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "retry count beyond int32",
        task_with(constraints={"maxTaskRetryCount": 2**31}),
        400,
        "InvalidPropertyValue",
    ),
    ("zero slots", task_with(requiredSlots=0), 400, "InvalidPropertyValue"),
    ("slots beyond int64", task_with(requiredSlots=2**64), 400, "InvalidPropertyValue"),
    (
        "exit code beyond int32",
        task_with(exitConditions={"exitCodes": [{"code": 2**40, "exitOptions": {}}]}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "range end before start",
        task_with(exitConditions={"exitCodeRanges": [{"start": 5, "end": 1, "exitOptions": {}}]}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "dependency range beyond int32",
        task_with(dependsOn={"taskIdRanges": [{"start": 1, "end": 2**33}]}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "bad scope",
        task_with(userIdentity={"autoUser": {"scope": "everyone"}}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "bad jobAction",
        task_with(exitConditions={"default": {"jobAction": "explode"}}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "bad dependencyAction",
        task_with(exitConditions={"default": {"dependencyAction": "maybe"}}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "bad working directory",
        task_with(containerSettings={"imageName": "i", "workingDirectory": "home"}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "no instances",
        task_with(multiInstanceSettings={"numberOfInstances": 0}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "two resource sources",
        task_with(resourceFiles=[{"httpUrl": "a", "storageContainerUrl": "b"}]),
        400,
        "InvalidPropertyValue",
    ),
    (
        "no resource source",
        task_with(resourceFiles=[{"filePath": "a"}]),
        400,
        "InvalidPropertyValue",
    ),
    (
        "bad dependency id",
        task_with(dependsOn={"taskIds": ["no spaces"]}),
        400,
        "InvalidPropertyValue",
    ),
    (
        "environment variable name with =",
        task_with(environmentSettings=[{"name": "A=B", "value": "1"}]),
        400,
        "InvalidPropertyValue",
    ),
    # missing or unknown properties
    ("no id", {"commandLine": "x"}, 400, "MissingRequiredProperty"),
    ("no commandLine", {"id": "t-new"}, 400, "MissingRequiredProperty"),
    ("empty object", {}, 400, "MissingRequiredProperty"),
    ("no image name", task_with(containerSettings={}), 400, "MissingRequiredProperty"),
    ("unknown property", task_with(color="blue"), 400, "UnsupportedProperty"),
    ("misspelt property", task_with(commandline="x"), 400, "UnsupportedProperty"),
    (
        "misspelt constraint",
        task_with(constraints={"maxTaskRetries": 3}),
        400,
        "UnsupportedProperty",
    ),
    (
        "unknown exit option",
        task_with(exitConditions={"default": {"jobAction": "none", "retry": True}}),
        400,
        "UnsupportedProperty",
    ),
    (
        "unknown setting in a list",
        task_with(environmentSettings=[{"name": "A", "secret": True}]),
        400,
        "UnsupportedProperty",
    ),
    # rules of the job
    (
        "dependencies on a job without them",
        task_with(dependsOn={"taskIds": ["a"]}),
        400,
        "TaskDependenciesNotSpecifiedOnJob",
    ),
]


@pytest.fixture
def world(account):
    """A job, a task and a pool whose state must survive every malformed request."""
    job = JobFactory(account=account, job_id="j")
    task = TaskFactory(job=job, task_id="t")
    pool = PoolFactory(account=account, pool_id="p")
    return job, task, pool


def unchanged(world) -> bool:
    job, task, pool = world
    return (
        Task.objects.count() == 1
        and Job.objects.count() == 1
        and Pool.objects.count() == 1
        and Task.objects.filter(pk=task.pk, etag=task.etag, state="active").exists()
        and Job.objects.filter(pk=job.pk, etag=job.etag, state="active", active_count=1).exists()
    )


def send(batch, method, path, payload):
    if isinstance(payload, bytes):
        return batch.request(method, path, raw=payload)
    return batch.request(method, path, raw=json.dumps(payload).encode())


def assert_batch_error(response, status, code):
    assert response.status_code == status, response.content[:500]
    got = json.loads(response.content)
    assert got["code"] == code
    assert got["message"]["lang"] == "en-US" and "\nRequestId:" in got["message"]["value"]
    assert response["Content-Type"] == "application/json;odata=minimalmetadata"


@pytest.mark.parametrize(
    ("payload", "status", "code"), [c[1:] for c in ADD_TASK], ids=[c[0] for c in ADD_TASK]
)
def test_a_malformed_add_task_is_refused_with_its_code(batch, world, payload, status, code):
    assert_batch_error(send(batch, "POST", "/jobs/j/tasks", payload), status, code)
    assert unchanged(world)


ITEMS = [c for c in ADD_TASK if isinstance(c[1], dict)]  # what can sit in a collection's `value`


@pytest.mark.parametrize(
    ("payload", "status", "code"), [c[1:] for c in ITEMS], ids=[c[0] for c in ITEMS]
)
def test_a_malformed_task_in_a_collection_is_a_clienterror_and_the_good_task_is_added(
    batch, world, payload, status, code
):
    r = batch.post(
        "/jobs/j/addtaskcollection", {"value": [payload, {"id": "good", "commandLine": "x"}]}
    )
    assert r.status_code == 200, r.content
    bad, good = json.loads(r.content)["value"]
    assert (bad["status"], bad["error"]["code"]) == ("clienterror", code)
    assert good["status"] == "success"
    assert sorted(Task.objects.values_list("task_id", flat=True)) == ["good", "t"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"value": [{"id": "a", "commandLine": NaN}]}',
        b'{"value": [{"id": "\\udc00"}]}',
        nested(100_000),
    ],
)
def test_a_malformed_collection_body_is_refused_whole(batch, world, raw):
    assert_batch_error(batch.post("/jobs/j/addtaskcollection", raw=raw), 400, "InvalidRequestBody")
    assert unchanged(world)


OTHER_BODIES = [
    # (method, path, body, status, code)
    ("PUT", "/jobs/j/tasks/t", b"{", 400, "InvalidRequestBody"),
    ("PUT", "/jobs/j/tasks/t", [], 400, "InvalidRequestBody"),
    ("PUT", "/jobs/j/tasks/t", {"constraints": []}, 400, "InvalidRequestBody"),
    (
        "PUT",
        "/jobs/j/tasks/t",
        {"constraints": {"maxWallClockTime": "soon"}},
        400,
        "InvalidPropertyValue",
    ),
    (
        "PUT",
        "/jobs/j/tasks/t",
        {"constraints": {"retentionTime": "-P1D"}},
        400,
        "InvalidPropertyValue",
    ),
    (
        "PUT",
        "/jobs/j/tasks/t",
        {"constraints": {"maxTaskRetryCount": "one"}},
        400,
        "InvalidRequestBody",
    ),
    (
        "PUT",
        "/jobs/j/tasks/t",
        {"constraints": {"maxTaskRetryCount": 2**40}},
        400,
        "InvalidPropertyValue",
    ),
    ("PUT", "/jobs/j/tasks/t", {"color": "blue"}, 400, "UnsupportedProperty"),
    ("PUT", "/jobs/j/tasks/t", {"constraints": {"retries": 1}}, 400, "UnsupportedProperty"),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p", "pool": "q"}},
        400,
        "UnsupportedProperty",
    ),
    ("POST", "/jobs", {"id": "new"}, 400, "MissingRequiredProperty"),
    ("POST", "/jobs", {"id": "new", "poolInfo": {}}, 400, "MissingRequiredProperty"),
    ("POST", "/jobs", {"id": "new job", "poolInfo": {"poolId": "p"}}, 400, "InvalidPropertyValue"),
    ("POST", "/jobs", {"id": "n" * 65, "poolInfo": {"poolId": "p"}}, 400, "InvalidPropertyValue"),
    ("POST", "/jobs", {"id": "new\n", "poolInfo": {"poolId": "p"}}, 400, "InvalidPropertyValue"),
    ("POST", "/jobs", {"id": "new", "poolInfo": {"poolId": "p\n"}}, 400, "InvalidPropertyValue"),
    ("POST", "/pools", {"id": "new\n", "vmSize": "a"}, 400, "InvalidPropertyValue"),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "priority": 1001},
        400,
        "InvalidPropertyValue",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "priority": "high"},
        400,
        "InvalidRequestBody",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "maxParallelTasks": 0},
        400,
        "InvalidPropertyValue",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "commonEnvironmentSettings": [{"name": "A=B"}]},
        400,
        "InvalidPropertyValue",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "onAllTasksComplete": "party"},
        400,
        "InvalidPropertyValue",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "usesTaskDependencies": "yes"},
        400,
        "InvalidRequestBody",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "jobManagerTask": {"x": float("nan")}},
        400,
        "InvalidRequestBody",
    ),
    (
        "POST",
        "/jobs",
        {"id": "new", "poolInfo": {"poolId": "p"}, "colour": "red"},
        400,
        "UnsupportedProperty",
    ),
    ("POST", "/jobs", [], 400, "InvalidRequestBody"),
    ("PATCH", "/jobs/j", {"priority": 5000}, 400, "InvalidPropertyValue"),
    ("PATCH", "/jobs/j", {"priority": "5.0"}, 400, "InvalidRequestBody"),
    ("PATCH", "/jobs/j", {"maxParallelTasks": 0}, 400, "InvalidPropertyValue"),
    (
        "PUT",
        "/jobs/j",
        {"poolInfo": {"poolId": "p"}, "maxParallelTasks": 0},
        400,
        "InvalidPropertyValue",
    ),
    (
        "PUT",
        "/jobs/j",
        {"poolInfo": {"poolId": "p"}, "priority": -1001},
        400,
        "InvalidPropertyValue",
    ),
    ("PUT", "/jobs/j", {"poolInfo": {"poolId": "p"}, "nonsense": 1}, 400, "UnsupportedProperty"),
    ("POST", "/jobs/j/terminate", {"terminateReason": 5}, 400, "InvalidRequestBody"),
    ("POST", "/jobs/j/terminate", {"terminateReason": "r" * 65}, 400, "InvalidPropertyValue"),
    ("POST", "/jobs/j/terminate", b"[", 400, "InvalidRequestBody"),
    ("POST", "/pools", {"id": "new"}, 400, "MissingRequiredProperty"),
    ("POST", "/pools", {"id": "new", "vmSize": "v" * 65}, 400, "InvalidPropertyValue"),
    (
        "POST",
        "/pools",
        {"id": "new", "vmSize": "a", "taskSlotsPerNode": 0},
        400,
        "InvalidPropertyValue",
    ),
    (
        "POST",
        "/pools",
        {"id": "new", "vmSize": "a", "targetDedicatedNodes": -1},
        400,
        "InvalidPropertyValue",
    ),
    ("POST", "/pools", {"id": "new", "vmSize": 5}, 400, "InvalidRequestBody"),
    (
        "POST",
        "/pools",
        {"id": "new", "vmSize": "a", "resizeTimeout": "-PT5M"},
        400,
        "InvalidPropertyValue",
    ),
    ("POST", "/pools", {"id": "new", "vmSize": "a", "extra": True}, 400, "UnsupportedProperty"),
]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    OTHER_BODIES,
    ids=[f"{m} {p} {i}" for i, (m, p, *_) in enumerate(OTHER_BODIES)],
)
def test_a_malformed_body_on_other_operations_is_refused_with_its_code(
    batch, world, method, path, payload, status, code
):
    assert_batch_error(send(batch, method, path, payload), status, code)
    assert unchanged(world)


QUERIES = [
    ("/jobs/j/tasks", {"$filter": "state eq 'sleeping'"}, "InvalidQueryParameterValue"),
    ("/jobs/j/tasks", {"$filter": "(("}, "InvalidQueryParameterValue"),
    ("/jobs/j/tasks", {"$filter": "commandLine eq 'x'"}, "InvalidQueryParameterValue"),
    (
        "/jobs/j/tasks",
        {"$filter": "executionInfo/exitCode eq 99999999999"},
        "InvalidQueryParameterValue",
    ),
    (
        "/jobs/j/tasks",
        {"$filter": "creationTime gt DateTime'not-a-date'"},
        "InvalidQueryParameterValue",
    ),
    (
        "/jobs/j/tasks",
        {"$filter": " or ".join(["state eq 'active'"] * 1000)},
        "InvalidQueryParameterValue",
    ),
    ("/jobs/j/tasks", {"$expand": "everything"}, "InvalidQueryParameterValue"),
    ("/jobs/j/tasks", {"maxresults": "many"}, "InvalidQueryParameterValue"),
    ("/jobs/j/tasks", {"maxresults": "0"}, "OutOfRangeQueryParameterValue"),
    ("/jobs/j/tasks/t", {"$expand": "nodes"}, "InvalidQueryParameterValue"),
    ("/jobs", {"$filter": "state eq 'lost'"}, "InvalidQueryParameterValue"),
    ("/pools", {"$filter": "state eq 'lost'"}, "InvalidQueryParameterValue"),
    ("/pools/p/nodes", {"$filter": "state eq 'lost'"}, "InvalidQueryParameterValue"),
    ("/jobs/j/tasks", {"timeout": "soon"}, "InvalidQueryParameterValue"),
]


@pytest.mark.parametrize(
    ("path", "params", "code"), QUERIES, ids=[f"{p} {q}"[:60] for p, q, _ in QUERIES]
)
def test_a_malformed_query_is_refused_with_its_code(batch, world, path, params, code):
    assert_batch_error(batch.get(path, params=params), 400, code)


@pytest.mark.parametrize("path", ["/nosuch", "/jobsx", "/job/j", "/tasks", "/api/jobs", "/JOBS"])
def test_an_unknown_path_is_invalid_uri(batch, world, path):
    assert_batch_error(batch.get(path), 400, "InvalidUri")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/certificates"),
        ("GET", "/applications"),
        ("GET", "/lifetimepoolstats"),
        ("POST", "/pools/p/upgradeos"),
        ("GET", "/poolusagemetrics"),
        ("GET", "/lifetimejobstats"),
    ],
)
def test_an_unsupported_batch_operation_is_501(batch, world, method, path):
    assert_batch_error(batch.request(method, path), 501, "UnsupportedOperation")
    assert unchanged(world)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/jobs/j/tasks/t"),
        ("POST", "/jobs/j/tasks/t"),
        ("DELETE", "/jobs/j/tasks"),
        ("PUT", "/jobs/j/tasks"),
        ("GET", "/jobs/j/addtaskcollection"),
        ("GET", "/jobs/j/tasks/t/terminate"),
        ("DELETE", "/jobs/j/tasks/t/reactivate"),
        ("POST", "/jobs/j/taskcounts"),
        ("DELETE", "/jobs"),
        ("PUT", "/pools/p"),
        ("POST", "/pools/p/nodes"),
        ("POST", "/jobs/j/tasks/t/subtasksinfo"),
        ("OPTIONS", "/jobs"),
        ("OPTIONS", "/jobs/j/tasks/t"),
        ("TRACE", "/jobs/j/tasks"),
        ("PROPFIND", "/pools"),
    ],
)
def test_a_wrong_http_verb_is_405(batch, world, method, path):
    assert_batch_error(batch.request(method, path), 405, "UnsupportedHttpVerb")
    assert unchanged(world)


def test_an_invalid_content_length_is_refused(batch, world):
    r = batch.client.generic(
        "POST",
        "/jobs/j/tasks?api-version=2025-06-01",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH="abc",
    )
    assert r.status_code in (400, 403)
    assert json.loads(r.content)["code"] in ("InvalidHeaderValue", "AuthenticationFailed")
    assert unchanged(world)


def test_a_body_far_over_any_limit_is_request_body_too_large(batch, world):
    r = batch.post(
        "/jobs/j/tasks", raw=json.dumps(task_with(commandLine="x" * (9 * 1024 * 1024))).encode()
    )
    assert_batch_error(r, 413, "RequestBodyTooLarge")
    assert unchanged(world)


def test_a_64_character_id_is_the_longest_accepted(batch, world):
    assert batch.post("/jobs/j/tasks", task_with(id="x" * 64)).status_code == 201


def test_a_host_outside_allowed_hosts_gets_a_batch_error_not_an_html_page(batch, job):
    response = batch.get(f"/jobs/{job.job_id}/tasks", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["code"] == "InvalidHeaderValue"
    assert {"key": "HeaderName", "value": "Host"} in body["values"]


# --- long values, encoded slashes (issue 8, item 14) -----------------------------------------


def test_a_huge_bad_value_is_not_echoed_whole(batch, world):
    r = batch.post("/jobs/j/tasks", {"id": "x" * 2_000_000, "commandLine": "x"})
    assert_batch_error(r, 400, "InvalidPropertyValue")
    assert len(r.content) < 4096
    value = {v["key"]: v["value"] for v in json.loads(r.content)["values"]}["PropertyValue"]
    assert value.startswith("xxxx") and len(value) <= 1100 and "2000000 characters" in value
    assert unchanged(world)


def test_a_huge_bad_query_value_is_not_echoed_whole(batch, world):
    r = batch.get("/jobs/j/tasks", params={"$filter": "state eq " + "'a" * 50_000})
    assert_batch_error(r, 400, "InvalidQueryParameterValue")
    assert len(r.content) < 4096


def test_every_detail_value_is_bounded_wherever_the_error_is_made():
    from tasks.errors import BatchError

    error = BatchError("InvalidInput", "m", 400, [("Reason", "r" * 10_000)])
    assert len(dict(error.values)["Reason"]) <= 1100
    assert dict(BatchError.invalid_property("p", "v" * 5000).values)["PropertyValue"].startswith(
        "vvv"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/pools/a%2Fb"),
        ("DELETE", "/pools/a%2Fb"),
        ("GET", "/pools/p%2Fnodes"),
        ("GET", "/jobs/j%2Fx/tasks"),
        ("GET", "/jobs/j/tasks/t%2Fy"),
        ("POST", "/jobs/j%2Fterminate"),
        ("GET", "/pools/p/nodes/n%2Fm"),
    ],
)
def test_an_encoded_slash_in_an_id_is_an_invalid_uri_not_another_operation(
    batch, world, method, path
):
    # WSGI decodes %2F, so `/jobs/j%2Fterminate` looked like Terminate Job `j`. With the raw
    # path (gunicorn's RAW_URI) it is recognised: 400 InvalidUri, not 501 or another
    # operation. Without it the decoded path is all the server sees: it names no operation
    # (InvalidUri), or one whose path is not the one signed (AuthenticationFailed).
    assert_batch_error(send_raw(batch, method, path, raw_uri=True), 400, "InvalidUri")
    r = send_raw(batch, method, path, raw_uri=False)
    assert (r.status_code, json.loads(r.content)["code"]) in (
        (400, "InvalidUri"),
        (403, "AuthenticationFailed"),
    )
    assert unchanged(world)


def send_raw(batch, method, path, *, raw_uri: bool):
    """A signed request for `path` as sent (percent-encoded), with or without the server's
    raw URI in the environ (gunicorn has it; Django's test client does not)."""
    from email.utils import formatdate

    from tests.conftest import API, sign

    url = f"{path}?api-version={API}"
    headers = {"ocp-date": formatdate(usegmt=True)}
    signed = dict(headers, **({"content-length": "0"} if method != "GET" else {}))
    headers["Authorization"] = sign(method, url, signed, batch.name, batch.key)
    extra = {"RAW_URI": url} if raw_uri else {}
    if method != "GET":
        extra["CONTENT_LENGTH"] = "0"
    return batch.client.generic(
        method, url, headers=headers, **extra
    )  # the test client decodes the path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/pools/p/upgradeos"),
        ("POST", "/pools/p/nodes/n/upgradeos"),
        ("GET", "/applications/a"),
        ("GET", "/lifetimejobstats"),
        ("GET", "/certificates"),
    ],
)
def test_every_other_operation_of_the_batch_api_is_still_501(batch, world, method, path):
    assert_batch_error(batch.request(method, path), 501, "UnsupportedOperation")
    assert unchanged(world)


@pytest.mark.parametrize(
    "path", ["/pools/p/bogus", "/jobs/j/bogus", "/pools/p/nodes/n/bogus", "/jobschedules/s/x/y"]
)
def test_a_path_under_a_batch_resource_that_is_no_batch_operation_is_invalid_uri(
    batch, world, path
):
    assert_batch_error(batch.get(path), 400, "InvalidUri")
