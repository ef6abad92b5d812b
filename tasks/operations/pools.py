"""Pool operations: add, delete (Batch pool rules: ids unique case-insensitively per account)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Account, Pool

from .common import Precondition, new_etag, now


def add_pool(account: Account, *, spec: dict) -> Pool:
    """Add a pool. Refuses an id already used in the account (409 PoolExists)."""
    t = now()
    pool = Pool(
        account=account,
        pool_id=spec["id"],
        id_key=spec["id"].lower(),
        vm_size=spec.get("vmSize", "standard_d2s_v3"),
        task_slots_per_node=spec.get("taskSlotsPerNode", 1),
        spec={k: v for k, v in spec.items() if k not in ("id",)},
        etag=new_etag(),
        creation_time=t,
        last_modified=t,
        state_transition_time=t,
    )
    try:
        with transaction.atomic():
            pool.save(force_insert=True)
    except IntegrityError:
        raise BatchError.pool_exists() from None
    return pool


def ensure_pool(account: Account, pool_id: str, *, slots_per_node: int) -> Pool:
    """Return the pool, creating it if missing (the local pool `make run` serves)."""
    pool = Pool.objects.filter(account=account, id_key=pool_id.lower()).first()
    if pool is not None:
        return pool
    try:
        return add_pool(account, spec={"id": pool_id, "vmSize": "local", "taskSlotsPerNode": slots_per_node})
    except BatchError:
        return Pool.objects.get(account=account, id_key=pool_id.lower())


def can_delete_pool(pool: Pool) -> BatchError | None:
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    return None


def delete_pool(pool: Pool, *, precondition: Precondition = None) -> None:
    """Delete a pool and its nodes. Its jobs stay (their tasks stay active, as in Batch
    when a job's pool is gone). Refuses a pool already being deleted (409 PoolBeingDeleted)."""
    with transaction.atomic():
        locked = Pool.objects.select_for_update().filter(pk=pool.pk).first()
        if locked is None:
            raise BatchError.pool_not_found()
        if precondition:
            precondition(locked)
        error = can_delete_pool(locked)
        if error:
            raise error
        locked.delete()
