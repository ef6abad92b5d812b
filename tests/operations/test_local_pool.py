"""ensure_local_pool: the pool `local` of `make run` as an ordinary pool with a target."""

import pytest

from tasks.errors import BatchError
from tasks.models import ComputeNode
from tasks.operations.pools import current_nodes, ensure_local_pool, resize_pool
from tests.factories import AccountFactory, ComputeNodeFactory

pytestmark = pytest.mark.django_db


def test_creates_the_local_pool_with_its_target_and_slots():
    pool = ensure_local_pool(AccountFactory(), nodes=2, slots=4)
    pool.refresh_from_db()
    assert (pool.pool_id, pool.provider, pool.task_slots_per_node) == ("local", "local", 4)
    assert (pool.target_dedicated_nodes, pool.allocation_state) == (2, "resizing")


def test_a_later_start_sets_the_target_again_after_a_resize():
    account = AccountFactory()
    pool = ensure_local_pool(account, nodes=2, slots=4)
    pool.allocation_state = "steady"
    pool.save()
    resize_pool(pool, target_dedicated=5)
    pool.allocation_state = "steady"
    pool.save(update_fields=["allocation_state"])
    again = ensure_local_pool(account, nodes=3, slots=2)
    assert again.pk == pool.pk
    assert (again.target_dedicated_nodes, again.task_slots_per_node, again.allocation_state) == (
        3,
        2,
        "resizing",
    )


def test_an_unchanged_start_changes_nothing():
    account = AccountFactory()
    pool = ensure_local_pool(account, nodes=1, slots=1)
    again = ensure_local_pool(account, nodes=1, slots=1)
    assert again.etag == pool.etag


def test_an_autoscaled_local_pool_keeps_its_formula_targets():
    account = AccountFactory()
    pool = ensure_local_pool(account, nodes=2, slots=1)
    pool.enable_auto_scale, pool.target_dedicated_nodes = True, 7
    pool.save()
    assert ensure_local_pool(account, nodes=2, slots=1).target_dedicated_nodes == 7


def test_offline_nodes_of_hand_started_agents_are_removed():
    account = AccountFactory()
    pool = ensure_local_pool(account, nodes=0, slots=1)
    old = ComputeNodeFactory(pool=pool, node_id="local-1", state="offline")
    alive = ComputeNodeFactory(pool=pool, node_id="worker", state="idle")
    ensure_local_pool(account, nodes=0, slots=1)
    assert list(ComputeNode.objects.filter(pool=pool).values_list("pk", flat=True)) == [alive.pk]
    assert not ComputeNode.objects.filter(pk=old.pk).exists()


def test_refuses_fewer_than_one_slot():
    with pytest.raises(BatchError):
        ensure_local_pool(AccountFactory(), nodes=1, slots=0)


def test_a_hand_started_node_with_scheduling_disabled_is_kept_and_counted():
    account = AccountFactory()
    pool = ensure_local_pool(account, nodes=0, slots=1)
    disabled = ComputeNodeFactory(
        pool=pool, node_id="worker", state="offline", scheduling_enabled=False, agent_pid=4321
    )
    ensure_local_pool(account, nodes=0, slots=1)
    assert ComputeNode.objects.filter(pk=disabled.pk).exists()
    assert current_nodes([pool]) == {pool.pk: (1, 0)}
