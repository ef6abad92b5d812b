"""Compute nodes on the wire: every BatchNode property, Reboot, Reimage, Disable/Enable
Scheduling, the node calls batchsite cannot serve, List Pool Node Counts and List Supported
Images."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Attempt, ComputeNode
from tasks.nodehost import AGENT_VERSION
from tests.api.test_paging import follow
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db

OLD_API = "2024-02-01.19.0"
IMAGE = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


@pytest.fixture
def pool(account):
    return PoolFactory(
        account=account,
        pool_id="p",
        vm_size="standard_d2s_v3",
        spec={
            "virtualMachineConfiguration": {
                "imageReference": IMAGE,
                "nodeAgentSKUId": "batch.node.ubuntu 22.04",
            },
            "startTask": {"commandLine": "/bin/true", "waitForSuccess": False},
        },
    )


def node(pool, node_id="n1", **kw) -> ComputeNode:
    return ComputeNodeFactory(pool=pool, node_id=node_id, ip_address="10.0.0.5", **kw)


def test_a_node_shows_every_property_batch_has(batch, pool):
    t = timezone.now()
    n = node(
        pool,
        is_dedicated=False,
        allocation_time=t - timedelta(minutes=2),
        registered=t,
        start_task_info={
            "state": "completed",
            "startTime": "2026-01-01T00:00:00.0000000Z",
            "endTime": "2026-01-01T00:00:01.0000000Z",
            "exitCode": 0,
            "result": "success",
            "retryCount": 0,
        },
        errors=[{"code": "DiskFull", "message": "no room", "errorDetails": []}],
        total_tasks_run=3,
        total_tasks_succeeded=2,
    )
    task = TaskFactory(
        job__account=pool.account, job__job_id="j", task_id="t", state="completed", requeue_count=1
    )
    Attempt.objects.create(
        task=task,
        job=task.job,
        node=n,
        node_name="n1",
        claimed=t,
        start_time=t,
        end_time=t,
        exit_code=0,
        number=2,
        outcome=Attempt.Outcome.SUCCEEDED,
    )
    got = body(batch.get("/pools/p/nodes/n1"))
    assert got["odata.metadata"] == "http://testserver/$metadata#nodes/@Element"
    assert (got["id"], got["url"], got["state"], got["schedulingState"]) == (
        "n1",
        "http://testserver/pools/p/nodes/n1",
        "idle",
        "enabled",
    )
    assert (got["ipAddress"], got["affinityId"], got["vmSize"], got["isDedicated"]) == (
        "10.0.0.5",
        "TVM:n1",
        "standard_d2s_v3",
        False,
    )
    assert got["allocationTime"] < got["lastBootTime"]
    assert (got["totalTasksRun"], got["totalTasksSucceeded"], got["runningTasksCount"]) == (3, 2, 0)
    assert got["startTaskInfo"]["result"] == "success" and got["errors"][0]["code"] == "DiskFull"
    assert got["startTask"] == {
        "commandLine": "/bin/true",
        "waitForSuccess": False,
        "maxTaskRetryCount": 0,
        "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
    }
    assert got["nodeAgentInfo"]["version"] == AGENT_VERSION and got["virtualMachineInfo"] == {
        "imageReference": IMAGE
    }
    [recent] = got["recentTasks"]
    assert recent["taskUrl"] == "http://testserver/jobs/j/tasks/t"
    assert (recent["jobId"], recent["taskId"], recent["taskState"]) == ("j", "t", "completed")
    assert recent["executionInfo"] | {"startTime": None, "endTime": None} == {
        "startTime": None,
        "endTime": None,
        "exitCode": 0,
        "retryCount": 1,
        "requeueCount": 1,
        "result": "success",
    }


def test_a_node_still_being_created_has_no_address_or_agent_yet(batch, pool):
    ComputeNodeFactory(pool=pool, node_id="tvmps_0_d", state="creating")
    got = body(batch.get("/pools/p/nodes/tvmps_0_d"))
    assert got["state"] == "creating" and "ipAddress" not in got and "nodeAgentInfo" not in got


def test_recent_tasks_are_the_latest_ten_newest_first_for_every_node_of_a_page(
    batch, pool, django_assert_num_queries
):
    t = timezone.now()
    for i in range(3):
        n = node(pool, f"n{i}")
        for k in range(12):
            task = TaskFactory(job__account=pool.account, task_id=f"t{i}-{k}")
            Attempt.objects.create(
                task=task, job=task.job, node=n, claimed=t + timedelta(seconds=k)
            )
    with django_assert_num_queries(5):  # account, pool, page, running counts, recent tasks
        listed = body(batch.get("/pools/p/nodes"))["value"]
    assert [[r["taskId"] for r in n["recentTasks"]] for n in listed] == [
        [f"t{i}-{k}" for k in range(11, 1, -1)] for i in range(3)
    ]


# --- actions -----------------------------------------------------------------------------


def test_reboot_answers_202_with_the_node_rebooting_at_once(batch, pool):
    n = node(pool)
    r = batch.post("/pools/p/nodes/n1/reboot", {"nodeRebootOption": "TaskCompletion"})
    assert r.status_code == 202 and r.content == b""
    assert r["DataServiceId"] == "http://testserver/pools/p/nodes/n1"
    assert body(batch.get("/pools/p/nodes/n1"))["state"] == "rebooting"  # what 15.x's poller reads
    n.refresh_from_db()
    assert (n.pending_action, n.action_option) == ("reboot", "taskcompletion")


def test_reboot_and_reimage_without_a_body_requeue_as_14x_sends_them(batch, pool):
    node(pool, "n1")
    node(pool, "n2")
    r = batch.request("POST", "/pools/p/nodes/n1/reboot", raw=b"", api_version=OLD_API)
    assert r.status_code == 202, r.content
    r = batch.post("/pools/p/nodes/n2/reimage", {})
    assert r.status_code == 202, r.content
    assert {(n.node_id, n.state, n.action_option) for n in ComputeNode.objects.all()} == {
        ("n1", "rebooting", "requeue"),
        ("n2", "reimaging", "requeue"),
    }


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("creating", "NodeBeingCreated"),
        ("starting", "NodeBeingStarted"),
        ("rebooting", "NodeBeingRebooted"),
        ("reimaging", "NodeBeingReimaged"),
        ("leavingpool", "NodeNotReady"),
    ],
)
def test_reboot_refusals_are_409_and_change_nothing(batch, pool, state, code):
    n = node(pool, state=state)
    r = batch.post("/pools/p/nodes/n1/reboot", {})
    assert (r.status_code, error_code(r)) == (409, code)
    assert ComputeNode.objects.get(pk=n.pk).state == state


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("reboot", {"nodeRebootOption": "later"}),
        ("reimage", {"nodeReimageOption": "now"}),
        ("disablescheduling", {"nodeDisableSchedulingOption": "retaineddata"}),
    ],
)
def test_an_unknown_option_is_an_invalid_property(batch, pool, path, body):
    node(pool)
    r = batch.post(f"/pools/p/nodes/n1/{path}", body)
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert ComputeNode.objects.get(node_id="n1").state == "idle"


def test_disable_and_enable_scheduling_answer_200(batch, pool):
    node(pool)
    r = batch.post(
        "/pools/p/nodes/n1/disablescheduling", {"nodeDisableSchedulingOption": "terminate"}
    )
    assert r.status_code == 200 and r["DataServiceId"] == "http://testserver/pools/p/nodes/n1"
    got = body(batch.get("/pools/p/nodes/n1"))
    assert (got["schedulingState"], got["state"]) == ("disabled", "offline")
    r = batch.post("/pools/p/nodes/n1/disablescheduling")
    assert (r.status_code, error_code(r)) == (409, "NodeAlreadyInTargetSchedulingState")
    assert batch.post("/pools/p/nodes/n1/enablescheduling").status_code == 200
    assert body(batch.get("/pools/p/nodes/n1"))["schedulingState"] == "enabled"


@pytest.mark.parametrize("path", ["reboot", "reimage", "disablescheduling", "enablescheduling"])
def test_an_action_on_a_missing_node_is_node_not_found(batch, pool, path):
    r = batch.post(f"/pools/p/nodes/none/{path}", {})
    assert (r.status_code, error_code(r)) == (404, "NodeNotFound")
    r = batch.post(f"/pools/none/nodes/n1/{path}", {})
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "users"),
        ("PUT", "users/bob"),
        ("DELETE", "users/bob"),
        ("GET", "remoteloginsettings"),
        ("GET", "rdp"),
        ("POST", "uploadbatchservicelogs"),
        ("POST", "start"),
        ("POST", "deallocate"),
        ("GET", "extensions"),
        ("GET", "extensions/ext"),
    ],
)
def test_what_a_batchsite_node_cannot_do_is_a_clear_501(batch, pool, method, path):
    node(pool)
    r = batch.request(
        method, f"/pools/p/nodes/n1/{path}", body={"name": "bob"} if method != "GET" else None
    )
    assert (r.status_code, error_code(r)) == (501, "UnsupportedOperation")
    assert "batchsite" in json.loads(r.content)["message"]["value"]
    r = batch.request(method, f"/pools/p/nodes/none/{path}")
    assert (r.status_code, error_code(r)) == (404, "NodeNotFound")


# --- node counts -------------------------------------------------------------------------


def test_node_counts_count_each_kind_by_state(batch, pool, account):
    for state in ("idle", "idle", "running", "starttaskfailed", "leavingpool"):
        ComputeNodeFactory(pool=pool, state=state)
    ComputeNodeFactory(pool=pool, state="creating", is_dedicated=False)
    PoolFactory(account=account, pool_id="empty")
    got = body(batch.get("/nodecounts"))
    assert got["odata.metadata"] == "http://testserver/$metadata#poolnodecounts"
    empty, counts = got["value"]
    assert empty["poolId"] == "empty" and empty["dedicated"]["total"] == 0
    dedicated = counts["dedicated"]
    assert (
        dedicated["idle"],
        dedicated["running"],
        dedicated["startTaskFailed"],
        dedicated["leavingPool"],
        dedicated["total"],
    ) == (2, 1, 1, 1, 5)
    assert (counts["lowPriority"]["creating"], counts["lowPriority"]["total"]) == (1, 1)
    assert dedicated["deallocated"] == 0 and dedicated["upgradingOS"] == 0
    old = body(batch.get("/nodecounts", api_version=OLD_API))["value"][1]["dedicated"]
    assert "deallocated" not in old and old["total"] == 5


def test_node_counts_filter_by_pool_and_page(batch, account, django_assert_num_queries):
    for i in range(5):
        ComputeNodeFactory(pool=PoolFactory(account=account, pool_id=f"p{i}"))
    got = body(batch.get("/nodecounts", params={"$filter": "poolId eq 'P3'"}))
    assert [c["poolId"] for c in got["value"]] == ["p3"]
    with django_assert_num_queries(3):  # the account, one page of pools, their counts
        first = body(batch.get("/nodecounts", params={"maxresults": "2"}))
    assert [c["poolId"] for c in first["value"]] == ["p0", "p1"] and "odata.nextLink" in first
    r = batch.get("/nodecounts", params={"$filter": "poolId ne 'p1'"})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")


# --- supported images --------------------------------------------------------------------


def test_supported_images_list_filter_and_page(batch):
    every = body(batch.get("/supportedimages"))["value"]
    assert {
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        "osType": "linux",
        "verificationType": "verified",
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
            "version": "latest",
        },
    } in every
    ubuntu = body(
        batch.get(
            "/supportedimages", params={"$filter": "nodeAgentSKUId eq 'batch.node.ubuntu 22.04'"}
        )
    )
    assert {i["nodeAgentSKUId"] for i in ubuntu["value"]} == {"batch.node.ubuntu 22.04"}
    assert (
        body(batch.get("/supportedimages", params={"$filter": "osType eq 'windows'"}))["value"]
        == []
    )
    assert len(
        body(batch.get("/supportedimages", params={"$filter": "osType ne 'windows'"}))["value"]
    ) == len(every)
    pages = [body(batch.get("/supportedimages", params={"maxresults": "4"}))]
    while "odata.nextLink" in pages[-1]:
        pages.append(body(follow(batch, pages[-1]["odata.nextLink"])))
    assert [len(p["value"]) for p in pages][0] == 4 and [
        i for p in pages for i in p["value"]
    ] == every


def test_supported_images_refuse_a_filter_batch_refuses(batch):
    r = batch.get("/supportedimages", params={"$filter": "startswith(osType,'l')"})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
