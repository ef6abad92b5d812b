"""tasks.operations.pools: add, ensure, delete and can_delete_pool."""

import pytest

from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, Pool
from tasks.operations.pools import add_pool, can_delete_pool, delete_pool, ensure_pool
from tests.factories import AccountFactory, ComputeNodeFactory, JobFactory, PoolFactory

pytestmark = pytest.mark.django_db


def test_adds_an_active_pool():
    pool = add_pool(AccountFactory(), spec={"id": "MyPool", "vmSize": "standard_d2s_v3", "taskSlotsPerNode": 4,
                                            "targetDedicatedNodes": 1})
    pool.refresh_from_db()
    assert (pool.pool_id, pool.id_key, pool.state, pool.task_slots_per_node) == ("MyPool", "mypool", "active", 4)
    assert pool.spec == {"vmSize": "standard_d2s_v3", "taskSlotsPerNode": 4, "targetDedicatedNodes": 1}


def test_refuses_an_id_already_in_the_account_whatever_its_case():
    account = AccountFactory()
    add_pool(account, spec={"id": "Pool", "vmSize": "a"})
    with pytest.raises(BatchError) as info:
        add_pool(account, spec={"id": "pOOL", "vmSize": "a"})
    assert (info.value.code, info.value.status) == ("PoolExists", 409)
    assert Pool.objects.filter(account=account).count() == 1


def test_the_same_id_is_free_in_another_account():
    add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})
    add_pool(AccountFactory(), spec={"id": "p", "vmSize": "a"})


def test_ensure_pool_creates_a_missing_pool_once():
    account = AccountFactory()
    first = ensure_pool(account, "local", slots_per_node=3)
    again = ensure_pool(account, "LOCAL", slots_per_node=8)
    assert first.pk == again.pk and again.task_slots_per_node == 3


def test_delete_removes_the_pool_and_its_nodes_but_keeps_its_jobs():
    pool = PoolFactory()
    ComputeNodeFactory(pool=pool)
    job = JobFactory(account=pool.account, pool_id=pool.pool_id)
    assert can_delete_pool(pool) is None
    delete_pool(pool)
    assert not Pool.objects.filter(pk=pool.pk).exists() and not ComputeNode.objects.exists()
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE


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

    def precondition(locked):
        raise BatchError.condition_not_met(412)

    with pytest.raises(BatchError):
        delete_pool(pool, precondition=precondition)
    assert Pool.objects.filter(pk=pool.pk).exists()


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
