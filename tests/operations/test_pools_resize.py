"""resize_pool and stop_resize_pool, and their can_* forms."""

import itertools
from datetime import timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import Pool
from tasks.operations.pools import (
    can_resize_pool,
    can_stop_resize_pool,
    resize_pool,
    stop_resize_pool,
)
from tests.factories import PoolFactory

pytestmark = pytest.mark.django_db

STATES = list(itertools.product(Pool.State.values, Pool.AllocationState.values, [False, True]))


def test_resize_sets_the_targets_and_starts_resizing():
    pool = PoolFactory(resize_errors=[{"code": "AllocationTimedout", "message": "old"}])
    after = resize_pool(
        pool,
        target_dedicated=3,
        target_low_priority=2,
        resize_timeout=timedelta(minutes=7),
        node_deallocation_option="taskcompletion",
    )
    after.refresh_from_db()
    assert (after.target_dedicated_nodes, after.target_low_priority_nodes) == (3, 2)
    assert (after.allocation_state, after.resize_timeout, after.node_deallocation_option) == (
        "resizing",
        timedelta(minutes=7),
        "taskcompletion",
    )
    assert after.resize_errors == [] and after.etag != pool.etag


def test_a_target_not_given_stays_and_the_option_defaults_to_requeue():
    pool = PoolFactory(
        target_dedicated_nodes=2, target_low_priority_nodes=5, node_deallocation_option="terminate"
    )
    after = resize_pool(pool, target_dedicated=1)
    assert (after.target_dedicated_nodes, after.target_low_priority_nodes) == (1, 5)
    assert (after.node_deallocation_option, after.resize_timeout) == ("requeue", None)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"target_dedicated": -1}, "targetDedicatedNodes"),
        ({"target_low_priority": -2}, "targetLowPriorityNodes"),
        ({"resize_timeout": timedelta(minutes=4, seconds=59)}, "resizeTimeout"),
        ({"node_deallocation_option": "drain"}, "nodeDeallocationOption"),
    ],
)
def test_resize_refuses_bad_values(kwargs, name):
    pool = PoolFactory()
    with pytest.raises(BatchError) as info:
        resize_pool(pool, **kwargs)
    assert (info.value.code, info.value.status, dict(info.value.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        400,
        name,
    )
    assert Pool.objects.get(pk=pool.pk).allocation_state == "steady"


def test_resize_refuses_a_pool_already_resizing():
    pool = PoolFactory(allocation_state="resizing")
    with pytest.raises(BatchError) as info:
        resize_pool(pool, target_dedicated=1)
    assert (info.value.code, info.value.status) == ("PoolBeingResized", 409)


def test_resize_refuses_an_autoscaled_pool():
    pool = PoolFactory(enable_auto_scale=True, auto_scale_formula="$TargetDedicatedNodes=1")
    with pytest.raises(BatchError) as info:
        resize_pool(pool, target_dedicated=1)
    assert (info.value.code, info.value.status) == ("OperationNotValidOnPool", 409)
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 0


def test_resize_refuses_a_pool_being_deleted():
    with pytest.raises(BatchError) as info:
        resize_pool(PoolFactory(state="deleting"), target_dedicated=1)
    assert (info.value.code, info.value.status) == ("PoolBeingDeleted", 409)


def test_resize_with_an_unmet_precondition_changes_nothing():
    pool = PoolFactory()

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        resize_pool(pool, target_dedicated=4, precondition=precondition)
    assert Pool.objects.get(pk=pool.pk).target_dedicated_nodes == 0


@pytest.mark.parametrize("state, allocation, autoscale", STATES)
def test_can_resize_agrees_with_resize(state, allocation, autoscale):
    pool = PoolFactory(state=state, allocation_state=allocation, enable_auto_scale=autoscale)
    predicted = can_resize_pool(pool)
    try:
        resize_pool(pool, target_dedicated=1)
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)


def test_stop_resize_makes_a_resizing_pool_stopping_and_keeps_its_targets():
    pool = PoolFactory(allocation_state="resizing", target_dedicated_nodes=4)
    after = stop_resize_pool(pool)
    after.refresh_from_db()
    assert (after.allocation_state, after.target_dedicated_nodes) == ("stopping", 4)
    assert after.etag != pool.etag


def test_stop_resize_of_a_steady_pool_changes_nothing():
    pool = PoolFactory()
    after = stop_resize_pool(pool)
    after.refresh_from_db()
    assert (after.allocation_state, after.etag) == ("steady", pool.etag)


def test_stop_resize_refuses_a_pool_being_deleted():
    with pytest.raises(BatchError) as info:
        stop_resize_pool(PoolFactory(state="deleting", allocation_state="resizing"))
    assert (info.value.code, info.value.status) == ("PoolBeingDeleted", 409)


@pytest.mark.parametrize("state, allocation, autoscale", STATES)
def test_can_stop_resize_agrees_with_stop_resize(state, allocation, autoscale):
    pool = PoolFactory(state=state, allocation_state=allocation, enable_auto_scale=autoscale)
    predicted = can_stop_resize_pool(pool)
    try:
        stop_resize_pool(pool)
        outcome = None
    except BatchError as error:
        outcome = error.code
    assert outcome == (predicted.code if predicted else None)
