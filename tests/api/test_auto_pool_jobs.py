"""Add Job with poolInfo.autoPoolSpecification through the API (the pool is the job's)."""

import json

import pytest

from tasks.models import Pool
from tests.conftest import error_code

pytestmark = pytest.mark.django_db

AUTO = {
    "autoPoolIdPrefix": "mine",
    "poolLifetimeOption": "job",
    "keepAlive": False,
    "pool": {
        "vmSize": "standard_d2s_v3",
        "targetDedicatedNodes": 1,
        "virtualMachineConfiguration": {
            "imageReference": {
                "publisher": "canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts",
            },
            "nodeAgentSKUId": "batch.node.ubuntu 22.04",
        },
    },
}


def test_add_job_with_an_auto_pool_creates_the_pool_and_names_it_in_execution_info(batch, account):
    r = batch.post("/jobs", {"id": "j", "poolInfo": {"autoPoolSpecification": AUTO}})
    assert r.status_code == 201, r.content
    pool = Pool.objects.get(account=account)
    got = json.loads(batch.get("/jobs/j").content)
    assert got["executionInfo"]["poolId"] == pool.pool_id and pool.pool_id.startswith("mine_")
    assert got["poolInfo"] == {"autoPoolSpecification": AUTO}
    pools = json.loads(batch.get("/pools").content)["value"]
    assert [(p["id"], p["targetDedicatedNodes"]) for p in pools] == [(pool.pool_id, 1)]


def test_a_pool_info_with_neither_is_still_missing_its_pool_id(batch):
    r = batch.post("/jobs", {"id": "j", "poolInfo": {}})
    assert (r.status_code, error_code(r)) == (400, "MissingRequiredProperty")
    assert json.loads(r.content)["values"][0] == {"key": "PropertyName", "value": "poolInfo.poolId"}


def test_a_bad_auto_pool_is_a_batch_error_and_nothing_is_added(batch, account):
    r = batch.post(
        "/jobs",
        {
            "id": "j",
            "poolInfo": {"autoPoolSpecification": {**AUTO, "poolLifetimeOption": "jobschedule"}},
        },
    )
    assert (r.status_code, error_code(r)) == (400, "InvalidPropertyValue")
    assert (
        batch.get("/jobs/j").status_code == 404
        and not Pool.objects.filter(account=account).exists()
    )


def test_deleting_the_job_deletes_its_pool(batch, account):
    batch.post("/jobs", {"id": "j", "poolInfo": {"autoPoolSpecification": AUTO}})
    assert batch.delete("/jobs/j").status_code == 202
    assert not Pool.objects.filter(account=account).exists()
