"""List and Get Compute Node (REFERENCE §12)."""

import json

import pytest
from django.utils import timezone

from tasks.models import Attempt
from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db

REQUIRED = {
    "id",
    "url",
    "state",
    "stateTransitionTime",
    "lastBootTime",
    "allocationTime",
    "ipAddress",
    "affinityId",
    "vmSize",
    "totalTasksRun",
    "virtualMachineInfo",
}


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


@pytest.fixture
def pool(account):
    return PoolFactory(account=account, pool_id="p")


def running(node, *, slots=1):
    task = TaskFactory(running=True, required_slots=slots)
    return Attempt.objects.create(
        task=task,
        job=task.job,
        node=node,
        node_name=node.node_id,
        slots=slots,
        claimed=timezone.now(),
    )


def test_list_answers_with_the_pools_nodes(batch, pool):
    ComputeNodeFactory(pool=pool, node_id="n2")
    ComputeNodeFactory(pool=pool, node_id="n1", state="running")
    ComputeNodeFactory(node_id="elsewhere")
    got = body(batch.get("/pools/p/nodes"))
    assert got["odata.metadata"] == "http://testserver/$metadata#nodes"
    assert [(n["id"], n["state"]) for n in got["value"]] == [("n1", "running"), ("n2", "idle")]
    assert REQUIRED <= set(got["value"][0])
    assert got["value"][0]["url"] == "http://testserver/pools/p/nodes/n1"


def test_nodes_report_their_running_tasks_and_slots(batch, pool):
    node = ComputeNodeFactory(pool=pool, node_id="n1", state="running")
    running(node, slots=2)
    running(node)
    Attempt.objects.create(
        task=TaskFactory(succeeded=True),
        job=TaskFactory().job,
        node=node,
        claimed=timezone.now(),
        outcome=Attempt.Outcome.SUCCEEDED,
    )
    listed = body(batch.get("/pools/p/nodes"))["value"][0]
    got = body(batch.get("/pools/p/nodes/n1"))
    assert (listed["runningTasksCount"], listed["runningTaskSlotsCount"]) == (2, 3)
    assert (got["runningTasksCount"], got["runningTaskSlotsCount"]) == (2, 3)
    assert got["schedulingState"] == "enabled"


def test_list_filters_by_state(batch, pool):
    ComputeNodeFactory(pool=pool, node_id="n1")
    ComputeNodeFactory(pool=pool, node_id="n2", state="running")
    got = body(batch.get("/pools/p/nodes", params={"$filter": "state eq 'running'"}))
    assert [n["id"] for n in got["value"]] == ["n2"]


def test_list_pages(batch, pool):
    for i in range(5):
        ComputeNodeFactory(pool=pool, node_id=f"n{i}")
    first = body(batch.get("/pools/p/nodes", params={"maxresults": "3"}))
    assert [n["id"] for n in first["value"]] == ["n0", "n1", "n2"]
    assert first["odata.nextLink"].startswith("http://testserver/pools/p/nodes?")


def test_list_pins_its_queries(batch, pool, django_assert_num_queries):
    for i in range(8):
        running(ComputeNodeFactory(pool=pool, node_id=f"n{i}", state="running"))
    # the account, the pool, one page, the running counts of the page, its recent tasks
    with django_assert_num_queries(5):
        r = batch.get("/pools/p/nodes")
    assert [n["runningTasksCount"] for n in body(r)["value"]] == [1] * 8


def test_get_of_a_missing_node_is_node_not_found(batch, pool):
    r = batch.get("/pools/p/nodes/none")
    assert (r.status_code, error_code(r)) == (404, "NodeNotFound")


@pytest.mark.parametrize("path", ["/pools/none/nodes", "/pools/none/nodes/n1"])
def test_nodes_of_a_missing_pool_are_pool_not_found(batch, path):
    r = batch.get(path)
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")
