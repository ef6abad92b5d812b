"""remove_nodes and can_remove_nodes."""

import itertools
from datetime import timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import ComputeNode, Pool
from tasks.operations.pools import can_remove_nodes, remove_nodes
from tests.factories import ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db


def managed(pool, node_id, **kw):
    return ComputeNodeFactory(pool=pool, node_id=node_id, provider_handle=f"local:{node_id}", **kw)


def test_the_named_nodes_leave_and_the_targets_go_down_by_them():
    pool = PoolFactory(target_dedicated_nodes=3, target_low_priority_nodes=1)
    managed(pool, "a"), managed(pool, "b"), managed(pool, "c")
    managed(pool, "lp", is_dedicated=False)
    after = remove_nodes(
        pool,
        node_ids=["a", "lp", "a"],
        node_deallocation_option="taskcompletion",
        resize_timeout=timedelta(minutes=10),
    )
    after.refresh_from_db()
    leaving = dict(
        ComputeNode.objects.filter(pool=pool, pending_action="remove").values_list(
            "node_id", "action_option"
        )
    )
    assert leaving == {"a": "taskcompletion", "lp": "taskcompletion"}
    assert (after.target_dedicated_nodes, after.target_low_priority_nodes) == (2, 0)
    assert (after.allocation_state, after.resize_timeout, after.etag != pool.etag) == (
        "resizing",
        timedelta(minutes=10),
        True,
    )


def test_a_hand_started_node_leaves_without_lowering_the_targets():
    pool = PoolFactory(target_dedicated_nodes=1)
    managed(pool, "a")
    ComputeNodeFactory(pool=pool, node_id="worker-7")
    after = remove_nodes(pool, node_ids=["worker-7"])
    assert after.target_dedicated_nodes == 1
    assert ComputeNode.objects.get(pool=pool, node_id="worker-7").pending_action == "remove"


def test_refuses_a_node_not_in_the_pool_and_changes_nothing():
    pool = PoolFactory(target_dedicated_nodes=1)
    managed(pool, "a")
    managed(PoolFactory(account=pool.account), "elsewhere")
    with pytest.raises(BatchError) as info:
        remove_nodes(pool, node_ids=["a", "elsewhere"])
    assert (info.value.code, info.value.status) == ("NodeNotFound", 404)
    assert not ComputeNode.objects.filter(pending_action="remove").exists()
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 1


def test_refuses_an_empty_list():
    with pytest.raises(BatchError) as info:
        remove_nodes(PoolFactory(), node_ids=[])
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (
        "MissingRequiredProperty",
        "nodeList",
    )


def test_refuses_more_than_100_nodes():
    with pytest.raises(BatchError) as info:
        remove_nodes(PoolFactory(), node_ids=[f"n{i}" for i in range(101)])
    assert (info.value.code, dict(info.value.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        "nodeList",
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"resize_timeout": timedelta(minutes=1)}, "resizeTimeout"),
        ({"node_deallocation_option": "kill"}, "nodeDeallocationOption"),
    ],
)
def test_refuses_bad_values(kwargs, name):
    pool = PoolFactory()
    managed(pool, "a")
    with pytest.raises(BatchError) as info:
        remove_nodes(pool, node_ids=["a"], **kwargs)
    assert dict(info.value.values)["PropertyName"] == name


@pytest.mark.parametrize(
    "state, allocation, autoscale",
    list(itertools.product(Pool.State.values, Pool.AllocationState.values, [False, True])),
)
def test_can_remove_nodes_agrees_with_remove_nodes(state, allocation, autoscale):
    pool = PoolFactory(state=state, allocation_state=allocation, enable_auto_scale=autoscale)
    managed(pool, "a")
    predicted = can_remove_nodes(pool)
    try:
        remove_nodes(pool, node_ids=["a"])
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)
