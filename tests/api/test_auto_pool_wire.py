"""Add Job with poolInfo.autoPoolSpecification: the nested BatchPoolSpecification is read
and refused like Add Pool's body, its errors named by their full path, and Get Job shows it
with executionInfo.poolId."""

import copy
import json

import pytest

from tasks.models import Job, Pool
from tests.api.test_pool_add import FULL, without
from tests.conftest import error_code

pytestmark = pytest.mark.django_db

POOL = {k: v for k, v in FULL.items() if k != "id"}
AUTO = {"autoPoolIdPrefix": "render", "poolLifetimeOption": "job", "keepAlive": True, "pool": POOL}
PREFIX = "poolInfo.autoPoolSpecification.pool."
SECRET_KEYS = {"password", "accountKey", "sasKey", "sshPrivateKey", "protectedSettings"}


def add(batch, auto, **kw):
    return batch.post("/jobs", {"id": "j", "poolInfo": {"autoPoolSpecification": auto}}, **kw)


def test_every_pool_property_of_an_auto_pool_reaches_its_pool(batch, account):
    r = add(batch, AUTO)
    assert r.status_code == 201, r.content
    job = json.loads(batch.get("/jobs/j").content)
    pool_id = job["executionInfo"]["poolId"]
    assert pool_id.startswith("render_") and "poolId" not in job["poolInfo"]
    assert job["poolInfo"]["autoPoolSpecification"]["pool"]["vmSize"] == "standard_d2s_v3"
    got = json.loads(batch.get(f"/pools/{pool_id}").content)
    expected = without(POOL, SECRET_KEYS)
    assert {k: got[k] for k in expected} == expected
    assert Pool.objects.get(pool_id=pool_id).keep_alive is True


def test_numbers_and_flags_sent_as_strings_are_read(batch):
    auto = copy.deepcopy(AUTO)
    auto["keepAlive"] = "false"
    auto["pool"] = {
        "vmSize": "standard_d2s_v3",
        "targetDedicatedNodes": "2",
        "taskSlotsPerNode": "3",
    }
    assert add(batch, auto).status_code == 201
    pool = Pool.objects.get()
    assert (pool.target_dedicated_nodes, pool.task_slots_per_node, pool.keep_alive) == (2, 3, False)


@pytest.mark.parametrize(
    ("change", "status", "code", "name"),
    [
        ({"pool": {**POOL, "colour": "red"}}, 400, "UnsupportedProperty", PREFIX + "colour"),
        (
            {"pool": {k: v for k, v in POOL.items() if k != "vmSize"}},
            400,
            "MissingRequiredProperty",
            PREFIX + "vmSize",
        ),
        (
            {"pool": {**POOL, "userAccounts": [{"name": "u"}]}},
            400,
            "MissingRequiredProperty",
            PREFIX + "userAccounts[0].password",
        ),
        (
            {"pool": {**POOL, "networkConfiguration": {"subnetId": "/s"}}},
            400,
            "InvalidPropertyValue",
            PREFIX + "networkConfiguration.subnetId",
        ),
        (
            {"pool": {**POOL, "taskSchedulingPolicy": {"nodeFillType": "random"}}},
            400,
            "InvalidPropertyValue",
            PREFIX + "taskSchedulingPolicy.nodeFillType",
        ),
        (
            {"poolLifetimeOption": "forever"},
            400,
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.poolLifetimeOption",
        ),
        (
            {"autoPoolIdPrefix": "x" * 21},
            400,
            "InvalidPropertyValue",
            "poolInfo.autoPoolSpecification.autoPoolIdPrefix",
        ),
        ({"keepAlive": "sometimes"}, 400, "InvalidRequestBody", None),
    ],
)
def test_a_bad_auto_pool_is_refused_like_a_bad_pool_and_nothing_is_added(
    batch, change, status, code, name
):
    r = add(batch, {**AUTO, **change})
    assert (r.status_code, error_code(r)) == (status, code), r.content
    if name:
        assert {"key": "PropertyName", "value": name} in json.loads(r.content)["values"]
    assert not Job.objects.exists() and not Pool.objects.exists()
