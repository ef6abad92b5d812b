"""delete_pool: asynchronous (deleting, nodes leave, then gone) and can_delete_pool."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, Pool
from tasks.operations.pools import can_delete_pool, delete_pool, finish_pool_deletion
from tasks.operations.sweeps import run_sweeps
from tests.factories import ComputeNodeFactory, JobFactory, PoolFactory

pytestmark = pytest.mark.django_db


def test_a_pool_without_nodes_is_gone_at_once_and_its_jobs_stay():
    pool = PoolFactory()
    job = JobFactory(account=pool.account, pool_id=pool.pool_id)
    assert can_delete_pool(pool) is None
    delete_pool(pool)
    assert not Pool.objects.filter(pk=pool.pk).exists()
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE


def test_a_pool_with_live_nodes_is_deleting_until_they_have_left():
    pool = PoolFactory()
    nodes = [
        ComputeNodeFactory(pool=pool, provider_handle="local:1"),
        ComputeNodeFactory(pool=pool),
    ]
    delete_pool(pool)
    after = Pool.objects.get(pk=pool.pk)
    assert (
        after.state == "deleting"
        and after.etag != pool.etag
        and after.state_transition_time > pool.creation_time
    )
    assert set(
        ComputeNode.objects.filter(pool=pool).values_list("pending_action", "action_option")
    ) == {("remove", "requeue")}
    assert finish_pool_deletion(after) is False
    ComputeNode.objects.filter(pk__in=[n.pk for n in nodes]).delete()  # the agents left
    assert finish_pool_deletion(after) is True and not Pool.objects.filter(pk=pool.pk).exists()


def test_stopped_hand_started_nodes_leave_with_the_pool_at_once():
    pool = PoolFactory()
    ComputeNodeFactory(pool=pool, state="offline", last_heartbeat=timezone.now())
    delete_pool(pool)
    assert not Pool.objects.filter(pk=pool.pk).exists()


def test_delete_refuses_a_pool_being_deleted():
    pool = PoolFactory(state=Pool.State.DELETING)
    assert can_delete_pool(pool).code == "PoolBeingDeleted"
    with pytest.raises(BatchError) as info:
        delete_pool(pool)
    assert (info.value.code, info.value.status) == ("PoolBeingDeleted", 409)
    assert Pool.objects.filter(pk=pool.pk).exists()


def test_delete_refuses_a_pool_deleted_meanwhile():
    pool = PoolFactory()
    Pool.objects.filter(pk=pool.pk).delete()
    with pytest.raises(BatchError) as info:
        delete_pool(pool)
    assert (info.value.code, info.value.status) == ("PoolNotFound", 404)


def test_delete_with_an_unmet_precondition_deletes_nothing():
    pool = PoolFactory()
    ComputeNodeFactory(pool=pool)

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        delete_pool(pool, precondition=precondition)
    assert Pool.objects.get(pk=pool.pk).state == "active"
    assert not ComputeNode.objects.filter(pool=pool, pending_action="remove").exists()


def test_can_delete_agrees_with_delete_in_every_state():
    for state in Pool.State.values:
        pool = PoolFactory(state=state)
        predicted = can_delete_pool(pool)
        try:
            delete_pool(pool)
            outcome = None
        except BatchError as error:
            outcome = error.code
        assert outcome == (predicted.code if predicted else None), state


def test_the_sweep_removes_a_deleting_pool_once_its_hand_started_agents_stopped():
    pool = PoolFactory()
    alive = ComputeNodeFactory(pool=pool)
    stale = ComputeNodeFactory(pool=pool, last_heartbeat=timezone.now() - timedelta(minutes=5))
    managed = ComputeNodeFactory(pool=pool, provider_handle="local:1", state="offline")
    delete_pool(pool)
    assert run_sweeps()["deleted_pools"] == 0
    assert set(ComputeNode.objects.filter(pool=pool).values_list("pk", flat=True)) == {
        alive.pk,
        managed.pk,
    }
    assert not ComputeNode.objects.filter(pk=stale.pk).exists()
    ComputeNode.objects.filter(pk__in=[alive.pk, managed.pk]).delete()  # they left
    assert run_sweeps()["deleted_pools"] == 1 and not Pool.objects.filter(pk=pool.pk).exists()


def test_a_live_hand_started_node_with_scheduling_disabled_is_asked_to_leave_not_dropped():
    pool = PoolFactory()
    node = ComputeNodeFactory(pool=pool, state="offline", scheduling_enabled=False, agent_pid=4321)
    delete_pool(pool)
    assert ComputeNode.objects.get(pk=node.pk).pending_action == "remove"
    assert Pool.objects.get(pk=pool.pk).state == "deleting"
