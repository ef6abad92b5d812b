"""The Pool calls (REFERENCE §12)."""

import json
from email.utils import parsedate_to_datetime

import pytest

from tasks.models import Pool
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db

CAPTURED_15X = {
    "id": "p",
    "vmSize": "standard_d2s_v3",
    "virtualMachineConfiguration": {
        "imageReference": {
            "publisher": "canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts",
            "version": "latest",
        },
        "nodeAgentSKUId": "batch.node.ubuntu 22.04",
    },
    "targetDedicatedNodes": 1,
    "taskSlotsPerNode": 2,
}
REQUIRED = {
    "id",
    "url",
    "eTag",
    "lastModified",
    "creationTime",
    "state",
    "stateTransitionTime",
    "vmSize",
    "currentDedicatedNodes",
    "currentLowPriorityNodes",
}


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_add_answers_201_with_the_headers_the_sdks_read(batch, account):
    r = batch.post("/pools", CAPTURED_15X)
    assert r.status_code == 201 and r.content == b""
    pool = Pool.objects.get(account=account)
    assert r["ETag"] == pool.etag and r["DataServiceId"] == "http://testserver/pools/p"
    assert parsedate_to_datetime(r["Last-Modified"]) == pool.last_modified.replace(microsecond=0)


def test_an_added_pool_reads_back_with_every_required_property(batch):
    batch.post("/pools", CAPTURED_15X)
    got = body(batch.get("/pools/p"))
    assert REQUIRED <= set(got)
    assert {
        k: got[k]
        for k in (
            "vmSize",
            "virtualMachineConfiguration",
            "targetDedicatedNodes",
            "taskSlotsPerNode",
        )
    } == {k: v for k, v in CAPTURED_15X.items() if k != "id"}
    # Resizing until the reconciler has started its node (tests/operations/test_reconcile.py).
    assert (got["state"], got["allocationState"], got["currentDedicatedNodes"]) == (
        "active",
        "resizing",
        0,
    )


def test_add_refuses_an_id_already_used_in_any_case(batch):
    batch.post("/pools", CAPTURED_15X)
    r = batch.post("/pools", {**CAPTURED_15X, "id": "P"})
    assert (r.status_code, error_code(r)) == (409, "PoolExists")


def test_current_nodes_count_the_nodes_that_are_not_offline(batch, account):
    pool = PoolFactory(account=account, pool_id="p")
    ComputeNodeFactory(pool=pool)
    ComputeNodeFactory(pool=pool, state="running")
    ComputeNodeFactory(pool=pool, state="offline")
    assert body(batch.get("/pools/p"))["currentDedicatedNodes"] == 2
    assert body(batch.get("/pools"))["value"][0]["currentDedicatedNodes"] == 2


def test_exists_answers_200_or_404(batch, account):
    pool = PoolFactory(account=account, pool_id="p")
    r = batch.head("/pools/p")
    assert r.status_code == 200 and r["ETag"] == pool.etag
    assert batch.head("/pools/none").status_code == 404


def test_get_of_a_missing_pool_is_pool_not_found(batch):
    r = batch.get("/pools/none")
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")


def test_list_answers_with_the_accounts_pools_in_id_order(batch, account):
    for pool_id in ("b", "C", "a"):
        PoolFactory(account=account, pool_id=pool_id)
    got = body(batch.get("/pools"))
    assert got["odata.metadata"] == "http://testserver/$metadata#pools"
    assert [p["id"] for p in got["value"]] == ["a", "b", "C"]


def test_list_filters_by_id(batch, account):
    PoolFactory(account=account, pool_id="gpu-1")
    PoolFactory(account=account, pool_id="cpu-1")
    got = body(batch.get("/pools", params={"$filter": "startswith(id,'gpu')"}))
    assert [p["id"] for p in got["value"]] == ["gpu-1"]


def test_list_pins_its_queries(batch, account, django_assert_num_queries):
    for _ in range(10):
        ComputeNodeFactory(pool=PoolFactory(account=account))
    with django_assert_num_queries(3):  # the account, one page, the node counts of the page
        r = batch.get("/pools")
    assert [p["currentDedicatedNodes"] for p in body(r)["value"]] == [1] * 10


def test_delete_answers_202_and_the_pool_is_gone(batch, account):
    PoolFactory(account=account, pool_id="p")
    r = batch.delete("/pools/p")
    assert r.status_code == 202 and r.content == b""
    r = batch.get("/pools/p")  # what 15.x's LRO poller reads
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")


def test_delete_of_a_pool_being_deleted_is_refused(batch, account):
    PoolFactory(account=account, pool_id="p", state="deleting")
    r = batch.delete("/pools/p")
    assert (r.status_code, error_code(r)) == (409, "PoolBeingDeleted")


def test_delete_of_a_missing_pool_is_pool_not_found(batch):
    r = batch.delete("/pools/none")
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")
