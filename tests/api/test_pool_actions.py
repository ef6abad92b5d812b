"""Patch, Update Properties, Resize, Stop Resize, Remove Nodes, Enable/Disable/Evaluate
AutoScale and Delete on the wire: the statuses and headers both SDKs require, the bodies
they send, and the operations' refusals as Batch errors."""

import json
from email.utils import parsedate_to_datetime

import pytest

from tasks.models import ComputeNode, Pool
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db

OLD_API = "2024-02-01.19.0"


@pytest.fixture
def pool(account):
    return PoolFactory(
        account=account,
        pool_id="p",
        vm_size="standard_d2s_v3",
        spec={"metadata": [{"name": "a", "value": "1"}], "startTask": {"commandLine": "/bin/true"}},
    )


def fresh(pool) -> Pool:
    return Pool.objects.get(pk=pool.pk)


def assert_pool_headers(r, pool, status):
    assert r.status_code == status, r.content
    assert r.content == b""
    now = fresh(pool)
    assert r["ETag"] == now.etag and r["DataServiceId"] == f"http://testserver/pools/{pool.pool_id}"
    assert parsedate_to_datetime(r["Last-Modified"]) == now.last_modified.replace(microsecond=0)


# --- patch and update properties -----------------------------------------------------------


def test_patch_answers_200_and_changes_only_what_it_names(batch, pool):
    r = batch.patch("/pools/p", {"metadata": [{"name": "b", "value": "2"}]})
    assert_pool_headers(r, pool, 200)
    spec = fresh(pool).spec
    assert spec["metadata"] == [{"name": "b", "value": "2"}] and spec["startTask"] == {
        "commandLine": "/bin/true"
    }
    assert fresh(pool).etag != pool.etag


def test_patch_refuses_what_it_cannot_change_rather_than_ignore_it(batch, pool):
    r = batch.patch("/pools/p", {"targetDedicatedNodes": 3})  # that is Resize's
    assert (r.status_code, error_code(r)) == (400, "UnsupportedProperty")
    assert fresh(pool).target_dedicated_nodes == 0


def test_patch_of_a_structural_property_is_refused_once_the_pool_has_nodes(batch, pool):
    ComputeNodeFactory(pool=pool)
    r = batch.patch("/pools/p", {"taskSlotsPerNode": 2})
    assert (r.status_code, error_code(r)) == (409, "OperationInvalidForCurrentState")
    assert fresh(pool).task_slots_per_node == 1


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(batch, pool):
    r = batch.patch("/pools/p", {"metadata": []}, headers={"If-Match": '"0xSTALE"'})
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    assert fresh(pool).spec["metadata"] == [{"name": "a", "value": "1"}]


def test_update_properties_answers_204_and_replaces(batch, pool):
    r = batch.post(
        "/pools/p/updateproperties", {"metadata": [], "applicationPackageReferences": []}
    )
    assert_pool_headers(r, pool, 204)
    spec = fresh(pool).spec
    assert "startTask" not in spec and "metadata" not in spec


def test_update_properties_needs_the_lists_both_schemas_require(batch, pool):
    r = batch.post("/pools/p/updateproperties", {"applicationPackageReferences": []})
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")
    assert json.loads(r.content)["values"][0] == {"key": "PropertyName", "value": "metadata"}
    assert fresh(pool).etag == pool.etag


def test_update_properties_of_14x_with_certificate_references_is_read(batch, pool):
    r = batch.post(
        "/pools/p/updateproperties",
        {
            "certificateReferences": [],
            "applicationPackageReferences": [],
            "metadata": [{"name": "c", "value": "3"}],
            "targetNodeCommunicationMode": "default",
        },
        api_version=OLD_API,
    )
    assert r.status_code == 204, r.content
    assert fresh(pool).spec["metadata"] == [{"name": "c", "value": "3"}]


# --- resize, stop resize, remove nodes -------------------------------------------------------


def test_resize_answers_202_with_the_pool_resizing_at_once(batch, pool):
    r = batch.post(
        "/pools/p/resize",
        {
            "targetDedicatedNodes": 2,
            "targetLowPriorityNodes": "1",
            "resizeTimeout": "PT10M00S",
            "nodeDeallocationOption": "TaskCompletion",
        },
    )
    assert_pool_headers(r, pool, 202)
    got = json.loads(batch.get("/pools/p").content)  # what 15.x's poller reads next
    assert (got["allocationState"], got["targetDedicatedNodes"], got["targetLowPriorityNodes"]) == (
        "resizing",
        2,
        1,
    )
    assert (
        got["resizeTimeout"] == "PT10M" and fresh(pool).node_deallocation_option == "taskcompletion"
    )


@pytest.mark.parametrize(
    ("pool_kw", "code"),
    [
        ({"allocation_state": "resizing"}, "PoolBeingResized"),
        (
            {"enable_auto_scale": True, "auto_scale_formula": "$TargetDedicatedNodes = 1;"},
            "OperationNotValidOnPool",
        ),
        ({"state": "deleting"}, "PoolBeingDeleted"),
    ],
)
def test_resize_refusals_are_409(batch, account, pool_kw, code):
    PoolFactory(account=account, pool_id="q", **pool_kw)
    r = batch.post("/pools/q/resize", {"targetDedicatedNodes": 1})
    assert (r.status_code, error_code(r)) == (409, code)


@pytest.mark.parametrize(
    ("body", "status", "code", "name"),
    [
        ({"targetDedicatedNodes": -1}, 400, "InvalidPropertyValue", "targetDedicatedNodes"),
        ({"resizeTimeout": "PT4M"}, 400, "InvalidPropertyValue", "resizeTimeout"),
        (
            {"nodeDeallocationOption": "later"},
            400,
            "InvalidPropertyValue",
            "nodeDeallocationOption",
        ),
        ({"targetDedicatedNodes": 1.5}, 400, "InvalidRequestBody", None),
        ({"colour": "red"}, 400, "UnsupportedProperty", "colour"),
    ],
)
def test_resize_refuses_bad_bodies(batch, pool, body, status, code, name):
    r = batch.post("/pools/p/resize", body)
    assert (r.status_code, error_code(r)) == (status, code)
    if name:
        assert {"key": "PropertyName", "value": name} in json.loads(r.content)["values"]
    assert fresh(pool).allocation_state == "steady"


def test_resize_with_a_stale_etag_is_412(batch, pool):
    r = batch.post("/pools/p/resize", {"targetDedicatedNodes": 1}, headers={"If-Match": "0xSTALE"})
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    r = batch.post(
        "/pools/p/resize", {"targetDedicatedNodes": 1}, headers={"If-Match": f'"{pool.etag}"'}
    )
    assert r.status_code == 202


def test_stop_resize_answers_202_with_the_pool_stopping(batch, account):
    pool = PoolFactory(
        account=account, pool_id="p", allocation_state="resizing", target_dedicated_nodes=3
    )
    r = batch.post("/pools/p/stopresize")
    assert_pool_headers(r, pool, 202)
    assert json.loads(batch.get("/pools/p").content)["allocationState"] == "stopping"


def test_remove_nodes_answers_202_and_asks_the_nodes_to_leave(batch, pool):
    node = ComputeNodeFactory(pool=pool, node_id="n1", provider_handle="local:1")
    ComputeNodeFactory(pool=pool, node_id="n2", provider_handle="local:2")
    Pool.objects.filter(pk=pool.pk).update(target_dedicated_nodes=2)
    r = batch.post(
        "/pools/p/removenodes",
        {"nodeList": ["n1"], "nodeDeallocationOption": "terminate", "resizeTimeout": "PT5M"},
    )
    assert_pool_headers(r, pool, 202)
    node = ComputeNode.objects.get(pk=node.pk)
    assert (node.pending_action, node.action_option) == ("remove", "terminate")
    assert (fresh(pool).target_dedicated_nodes, fresh(pool).allocation_state) == (1, "resizing")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"nodeList": ["nosuch"]}, 404, "NodeNotFound"),
        ({"nodeList": []}, 400, "MissingRequiredProperty"),
        ({}, 400, "MissingRequiredProperty"),
        ({"nodeList": [f"n{i}" for i in range(101)]}, 400, "InvalidPropertyValue"),
        ({"nodeList": "n1"}, 400, "InvalidRequestBody"),
    ],
)
def test_remove_nodes_refusals(batch, pool, body, status, code):
    ComputeNodeFactory(pool=pool, node_id="n1")
    r = batch.post("/pools/p/removenodes", body)
    assert (r.status_code, error_code(r)) == (status, code)
    assert not ComputeNode.objects.exclude(pending_action="").exists()


# --- autoscale ---------------------------------------------------------------------------------


def test_enable_autoscale_answers_200_and_evaluates_at_once(batch, pool):
    r = batch.post(
        "/pools/p/enableautoscale",
        {"autoScaleFormula": "$TargetDedicatedNodes = 3;", "autoScaleEvaluationInterval": "PT10M"},
    )
    assert_pool_headers(r, pool, 200)
    got = json.loads(batch.get("/pools/p").content)
    assert (
        got["enableAutoScale"],
        got["autoScaleEvaluationInterval"],
        got["targetDedicatedNodes"],
    ) == (True, "PT10M", 3)
    assert got["autoScaleRun"]["results"] == (
        "$TargetDedicatedNodes=3;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )


def test_enable_autoscale_refusals(batch, pool):
    r = batch.post("/pools/p/enableautoscale", {})
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")
    r = batch.post("/pools/p/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = (;"})
    assert (r.status_code, error_code(r)) == (400, "AutoScalingFormulaSyntaxError")
    r = batch.post(
        "/pools/p/enableautoscale",
        {"autoScaleFormula": "$TargetDedicatedNodes = 1;", "autoScaleEvaluationInterval": "PT1M"},
    )
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert not fresh(pool).enable_auto_scale


def test_evaluate_answers_the_autoscale_run_and_applies_nothing(batch, pool):
    batch.post("/pools/p/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = 1;"})
    before = fresh(pool)
    r = batch.post(
        "/pools/p/evaluateautoscale",
        {"autoScaleFormula": "$x = 2; $TargetDedicatedNodes = $x * 2;"},
    )
    assert r.status_code == 200, r.content
    run = json.loads(r.content)
    assert (
        run["results"]
        == "$TargetDedicatedNodes=4;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;$x=2"
    )
    assert "timestamp" in run and "error" not in run
    assert r["ETag"] == before.etag and fresh(pool).target_dedicated_nodes == 1


def test_evaluate_of_a_formula_that_fails_as_it_runs_answers_200_with_the_error(batch, pool):
    batch.post("/pools/p/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = 1;"})
    r = batch.post(
        "/pools/p/evaluateautoscale",
        {
            "autoScaleFormula": "$TargetDedicatedNodes = $CPUPercent.GetSample(TimeInterval_Minute * 5);"
        },
    )
    assert r.status_code == 200, r.content
    assert json.loads(r.content)["error"]["code"]


def test_evaluate_refusals(batch, pool):
    r = batch.post("/pools/p/evaluateautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = 1;"})
    assert (r.status_code, error_code(r)) == (409, "OperationNotValidOnPool")
    r = batch.post("/pools/p/evaluateautoscale", {})
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")


def test_disable_autoscale_answers_200_and_keeps_the_targets(batch, pool):
    batch.post("/pools/p/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = 2;"})
    r = batch.post("/pools/p/disableautoscale")
    assert_pool_headers(r, pool, 200)
    got = json.loads(batch.get("/pools/p").content)
    assert (got["enableAutoScale"], got["targetDedicatedNodes"]) == (False, 2)
    assert "autoScaleFormula" not in got and "autoScaleRun" not in got


# --- delete ------------------------------------------------------------------------------------


def test_delete_of_a_pool_with_live_nodes_answers_202_and_leaves_it_deleting(batch, pool):
    node = ComputeNodeFactory(pool=pool, node_id="n1", provider_handle="local:1")
    r = batch.delete("/pools/p")
    assert r.status_code == 202 and r.content == b""
    got = json.loads(batch.get("/pools/p").content)  # 15.x's poller waits while it is deleting
    assert got["state"] == "deleting"
    assert ComputeNode.objects.get(pk=node.pk).pending_action == "remove"
    for path, body in (
        ("/pools/p/resize", {"targetDedicatedNodes": 1}),
        ("/pools/p/stopresize", None),
        ("/pools/p/enableautoscale", {"autoScaleFormula": "$TargetDedicatedNodes = 1;"}),
    ):
        r = batch.post(path, body)
        assert (r.status_code, error_code(r)) == (409, "PoolBeingDeleted"), path
    r = batch.patch("/pools/p", {"metadata": []})
    assert (r.status_code, error_code(r)) == (409, "PoolBeingDeleted")


@pytest.mark.parametrize(
    "path",
    [
        "/pools/none/resize",
        "/pools/none/stopresize",
        "/pools/none/removenodes",
        "/pools/none/enableautoscale",
        "/pools/none/disableautoscale",
        "/pools/none/evaluateautoscale",
        "/pools/none/updateproperties",
    ],
)
def test_every_action_on_a_missing_pool_is_pool_not_found(batch, path):
    r = batch.post(path, {"targetDedicatedNodes": 1})
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")
