"""Pool operations: add, delete, update properties (replace), patch, resize, stop resize,
remove nodes, and the pool `local` that `make run` serves.

These operations change a pool's targets and its nodes' pending actions; the reconciler
(tasks.operations.reconcile) then drives the pool's nodes toward the targets through the
pool's node provider and moves allocationState back to `steady`. Batch rules kept here:
pool ids are unique case-insensitively per account; a pool resizes only when steady and
not autoscaled; a pool being deleted refuses everything (PoolBeingDeleted).

A node is *provider-managed* when the reconciler made it (it has a provider handle, or is
still `creating`); an agent started by hand (`manage.py runnode`) makes an unmanaged node,
which the reconciler never starts or stops. Targets count managed nodes; the current
counts (currentDedicatedNodes, currentLowPriorityNodes) count every node of the pool from
its creation until it leaves, except a hand-started node whose agent has stopped.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Account, ComputeNode, NodeDeallocationOption, Pool, new_etag
from tasks.providers import sizes

from . import pool_specs
from .autoscale import (  # noqa: F401 - the pool operations, in one place for their callers
    can_disable_auto_scale,
    can_enable_auto_scale,
    can_evaluate_auto_scale,
    disable_auto_scale,
    enable_auto_scale,
    evaluate_auto_scale,
    evaluate_new_pool,
    validate_formula,
)
from .common import Precondition, lock_checked, now
from .node_leaving import NodeStillBusy, leave_pool
from .pool_nodes import counted, current_nodes, hand_started_gone, is_managed  # noqa: F401 - re-exported

MAX_REMOVE_NODES = 100
LOCAL_POOL_ID = "local"


def _lock_pool(pool: Pool, precondition: Precondition, refusal) -> Pool:
    """Lock the pool row, then check the caller's condition and the operation's rule on it."""
    return lock_checked(
        Pool.objects.filter(pk=pool.pk), BatchError.pool_not_found, precondition, refusal
    )


def _start_resize(pool: Pool, t=None) -> None:
    """A new resize begins: allocationState resizing, the last resize's errors cleared."""
    pool.move_allocation_to(Pool.AllocationState.RESIZING, t or now())
    pool.resize_errors = []


def _not_deleting(pool: Pool) -> BatchError | None:
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    return None


# --- add ---------------------------------------------------------------------------------


def add_pool(
    account: Account,
    *,
    spec: dict,
    owner_job=None,
    keep_alive: bool = False,
    provider: str | None = None,
) -> Pool:
    """Add a pool: every BatchPoolCreateOptions property is stored and returned; its nodes
    come from the provider its vmSize maps to. A pool with targets starts `resizing` (the
    reconciler allocates its nodes); an autoscaled one evaluates its formula first.

    Refuses an id already used in the account whatever its case (409 PoolExists), a vmSize
    the deployment has no size for, taskSlotsPerNode beyond the size, a resizeTimeout under
    5 minutes, targets with enableAutoScale, a subnetId or custom image (400
    InvalidPropertyValue), enableAutoScale without a formula (400 MissingRequiredProperty),
    application packages or certificates (409 InvalidApplicationPackageReferences /
    InvalidCertificateReferences), a formula Batch refuses (400
    AutoScalingFormulaSyntaxError / AutoScaleFormulaTooLong).
    """
    size = pool_specs.check_pool_spec(spec)
    t = now()
    auto = bool(spec.get("enableAutoScale"))
    if auto:
        validate_formula(spec["autoScaleFormula"])
    pool = Pool(
        account=account,
        pool_id=spec["id"],
        id_key=spec["id"].lower(),
        vm_size=spec["vmSize"],
        task_slots_per_node=spec.get("taskSlotsPerNode", 1),
        spec=pool_specs.stored(spec),
        etag=new_etag(),
        creation_time=t,
        last_modified=t,
        state_transition_time=t,
        provider=provider or size.provider,
        target_dedicated_nodes=0 if auto else spec.get("targetDedicatedNodes") or 0,
        target_low_priority_nodes=0 if auto else spec.get("targetLowPriorityNodes") or 0,
        allocation_state=Pool.AllocationState.STEADY,
        allocation_state_transition_time=t,
        resize_timeout=spec.get("resizeTimeout"),
        enable_auto_scale=auto,
        auto_scale_formula=spec.get("autoScaleFormula", "") if auto else "",
        auto_scale_evaluation_interval=spec.get("autoScaleEvaluationInterval") if auto else None,
        owner_job=owner_job,
        keep_alive=keep_alive,
    )
    if pool.target_dedicated_nodes or pool.target_low_priority_nodes:
        _start_resize(pool, t)
    try:
        with transaction.atomic():
            pool.save(force_insert=True)
            if auto:
                evaluate_new_pool(pool)
    except IntegrityError:
        raise BatchError.pool_exists() from None
    return pool


def ensure_pool(account: Account, pool_id: str, *, slots_per_node: int) -> Pool:
    """Return the pool, creating it if missing (kept for callers that start their own
    agents by hand; `make run` uses ensure_local_pool)."""
    pool = Pool.objects.filter(account=account, id_key=pool_id.lower()).first()
    if pool is not None:
        return pool
    try:
        return add_pool(
            account,
            spec={"id": pool_id, "vmSize": "local", "taskSlotsPerNode": slots_per_node},
            provider="local",
        )
    except BatchError:
        return Pool.objects.get(account=account, id_key=pool_id.lower())


def ensure_local_pool(account: Account, *, nodes: int, slots: int) -> Pool:
    """The pool `local` that `make run` serves, an ordinary pool of the `local` provider
    whose target is `nodes` dedicated nodes of `slots` task slots: created if missing, its
    target (unless autoscaled) and slots set to these on every start, so the reconciler
    starts the agents. Resize works on it like on any pool. The nodes of hand-started
    agents that are gone (the `local-N` of an older batchsite) are removed."""
    if nodes < 0 or slots < 1:
        raise BatchError.invalid_property(
            "nodes" if nodes < 0 else "slots", nodes if nodes < 0 else slots
        )
    pool = Pool.objects.filter(account=account, id_key=LOCAL_POOL_ID).first()
    if pool is None:
        try:
            return add_pool(
                account,
                spec={
                    "id": LOCAL_POOL_ID,
                    "vmSize": "local",
                    "taskSlotsPerNode": slots,
                    "targetDedicatedNodes": nodes,
                },
                provider="local",
            )
        except BatchError as error:
            if error.code != "PoolExists":
                raise
    with transaction.atomic():
        pool = Pool.objects.select_for_update().get(account=account, id_key=LOCAL_POOL_ID)
        changed = pool.task_slots_per_node != slots or pool.provider != "local"
        pool.task_slots_per_node, pool.provider = slots, "local"
        wanted = (nodes, 0)
        if (
            not pool.enable_auto_scale
            and pool.state == Pool.State.ACTIVE
            and (pool.target_dedicated_nodes, pool.target_low_priority_nodes) != wanted
        ):
            pool.target_dedicated_nodes, pool.target_low_priority_nodes = wanted
            _start_resize(pool)
            changed = True
        if changed:
            pool.touch(now())
            pool.save()
    for node in ComputeNode.objects.filter(hand_started_gone(), pool=pool):
        drop_node(node)
    return pool


# --- delete ------------------------------------------------------------------------------


def can_delete_pool(pool: Pool) -> BatchError | None:
    """A pool already being deleted cannot be deleted again (409 PoolBeingDeleted)."""
    return _not_deleting(pool)


def delete_pool(pool: Pool, *, precondition: Precondition = None) -> None:
    """Delete a pool, asynchronously as Batch does: it becomes `deleting`, any resize
    stops, every node leaves (its running tasks are requeued, as with the default requeue
    option), then the pool is gone. A pool without live agents is gone at once. Its jobs
    stay (their tasks stay active until a job targets another pool).
    Refuses a pool already being deleted (409 PoolBeingDeleted)."""
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_delete_pool)
        locked.move_to(Pool.State.DELETING, now())
        locked.save()
        ComputeNode.objects.filter(pool=locked).update(
            pending_action=ComputeNode.Action.REMOVE,
            action_option=NodeDeallocationOption.REQUEUE,
        )
    # Nodes no agent will ever drain: a hand-started node that stopped.
    for node in ComputeNode.objects.filter(hand_started_gone(), pool=locked):
        drop_node(node)
    finish_pool_deletion(locked)


def finish_pool_deletion(pool: Pool) -> bool:
    """Remove a `deleting` pool once its last node has left. Returns whether it is gone."""
    with transaction.atomic():
        if ComputeNode.objects.filter(pool_id=pool.pk).exists():
            return False
        return Pool.objects.filter(pk=pool.pk, state=Pool.State.DELETING).delete()[0] > 0


def finish_pool_deletions() -> int:
    """For the sweep: pools being deleted whose last node has left are removed, and the
    nodes of hand-started agents that stopped (SIGTERM, or no heartbeat for
    BATCHSITE_NODE_LOST_SECONDS) leave with them; provider-managed nodes are the
    reconciler's. Returns how many pools it removed."""
    removed = 0
    for pool in Pool.objects.filter(state=Pool.State.DELETING):
        for node in ComputeNode.objects.filter(hand_started_gone(), pool=pool):
            drop_node(node)
        removed += finish_pool_deletion(pool)
    return removed


def drop_node(node: ComputeNode) -> bool:
    """A node leaves its pool without its agent (never started, dead, or a stopped
    hand-started agent): what still runs there is requeued, the files of its completed
    tasks count as cleaned up, the row is deleted (node_leaving.leave_pool). Returns False
    when a task row stayed busy (call again later)."""
    try:
        leave_pool(node)
    except NodeStillBusy:
        return False
    return True


# --- update properties and patch ---------------------------------------------------------


def can_update_pool(pool: Pool) -> BatchError | None:
    """A pool being deleted cannot change (409 PoolBeingDeleted)."""
    return _not_deleting(pool)


# Properties Patch changes only while the pool has no nodes (the Batch docs say so of each).
EMPTY_POOL_ONLY = (
    "displayName",
    "vmSize",
    "enableInterNodeCommunication",
    "virtualMachineConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
    "resourceTags",
)
# Properties Update Properties replaces: absent means removed.
REPLACED = (
    "startTask",
    "applicationPackageReferences",
    "metadata",
    "certificateReferences",
    "targetNodeCommunicationMode",
)


def update_pool_properties(pool: Pool, *, spec: dict, precondition: Precondition = None) -> Pool:
    """Update Properties (replace semantics): startTask, applicationPackageReferences,
    metadata (and 14.x's certificateReferences, targetNodeCommunicationMode) become what
    the request says; one it omits is removed. New nodes get the new start task.
    Refuses a pool being deleted (409 PoolBeingDeleted), application packages or
    certificates (409 InvalidApplicationPackageReferences / InvalidCertificateReferences),
    a start task whose userName is none of the pool's userAccounts (400 InvalidPropertyValue)."""
    pool_specs.check_honourable(spec)
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_update_pool)
        stored = {k: v for k, v in locked.spec.items() if k not in REPLACED}
        stored.update(
            {
                k: v
                for k, v in pool_specs.stored(spec).items()
                if k in REPLACED and v not in (None, [])
            }
        )
        pool_specs.check_user_accounts(stored)
        locked.spec = stored
        locked.touch(now())
        locked.save()
    return locked


def patch_pool(pool: Pool, *, spec: dict, precondition: Precondition = None) -> Pool:
    """Patch (update semantics): each property present replaces the pool's; one absent is
    left as it is. startTask, applicationPackageReferences, metadata and
    targetNodeCommunicationMode change any time; the others (displayName, vmSize,
    taskSlotsPerNode, virtualMachineConfiguration, ...) only while the pool has no nodes.
    Refuses a pool being deleted (409 PoolBeingDeleted), a property of the second kind on a
    pool with nodes (409 OperationInvalidForCurrentState), and what Add Pool refuses."""
    pool_specs.check_honourable(spec)
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_update_pool)
        structural = [k for k in EMPTY_POOL_ONLY if k in spec]
        if structural and ComputeNode.objects.filter(pool=locked).exists():
            raise BatchError.operation_invalid_for_state(
                f"{structural[0]} can be updated only when the pool has no compute nodes."
            )
        if "vmSize" in spec:
            size = pool_specs.vm_size_of(spec["vmSize"])
            locked.vm_size, locked.provider = spec["vmSize"], size.provider
        size = pool_specs.vm_size_of(locked.vm_size)
        if "taskSlotsPerNode" in spec:
            pool_specs.check_task_slots(spec["taskSlotsPerNode"], size)
            locked.task_slots_per_node = spec["taskSlotsPerNode"]
        stored = dict(locked.spec)
        stored.update(pool_specs.stored(spec))
        pool_specs.check_user_accounts(stored)
        locked.spec = stored
        locked.touch(now())
        locked.save()
    return locked


# --- resize ------------------------------------------------------------------------------


def can_resize_pool(pool: Pool) -> BatchError | None:
    """Batch resizes a pool only when its allocationState is steady (409 PoolBeingResized)
    and it is not autoscaled (409 OperationNotValidOnPool); a pool being deleted refuses
    (409 PoolBeingDeleted)."""
    if pool.state == Pool.State.DELETING:
        return BatchError.pool_being_deleted()
    if pool.enable_auto_scale:
        return BatchError(
            "OperationNotValidOnPool",
            "The pool is configured for automatic scaling: disable autoscale to resize it.",
            409,
        )
    if pool.allocation_state != Pool.AllocationState.STEADY:
        return BatchError("PoolBeingResized", "The specified pool is being resized.", 409)
    return None


def resize_pool(
    pool: Pool,
    *,
    target_dedicated: int | None = None,
    target_low_priority: int | None = None,
    resize_timeout: timedelta | None = None,
    node_deallocation_option: str | None = None,
    precondition: Precondition = None,
) -> Pool:
    """Resize: set the targets (one not given stays as it is) and start a resize; the
    reconciler adds nodes, or asks the nodes it chooses to leave per
    nodeDeallocationOption (default requeue), within resizeTimeout (default 15 minutes).
    Refuses what can_resize_pool refuses, a negative target, a resizeTimeout under 5
    minutes or an unknown option (400 InvalidPropertyValue)."""
    for name, value in (
        ("targetDedicatedNodes", target_dedicated),
        ("targetLowPriorityNodes", target_low_priority),
    ):
        if value is not None:
            pool_specs.check_target(value, name)
    pool_specs.check_resize_timeout(resize_timeout)
    option = pool_specs.check_deallocation_option(node_deallocation_option)
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_resize_pool)
        if target_dedicated is not None:
            locked.target_dedicated_nodes = target_dedicated
        if target_low_priority is not None:
            locked.target_low_priority_nodes = target_low_priority
        locked.resize_timeout = resize_timeout
        locked.node_deallocation_option = option
        _start_resize(locked)
        locked.touch(now())
        locked.save()
    return locked


def can_stop_resize_pool(pool: Pool) -> BatchError | None:
    """Stop Resize refuses only a pool being deleted (409 PoolBeingDeleted); on a steady
    pool it changes nothing."""
    return _not_deleting(pool)


def stop_resize_pool(pool: Pool, *, precondition: Precondition = None) -> Pool:
    """Stop Resize: allocationState `stopping`, then `steady` once the reconciler has
    cancelled the nodes not yet allocated; the pool stays at the nodes it has, its targets
    as they were, with a ResizeStopped resizeError for each kind short of its target.
    Refuses a pool being deleted (409 PoolBeingDeleted)."""
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_stop_resize_pool)
        if locked.allocation_state == Pool.AllocationState.RESIZING:
            t = now()
            locked.move_allocation_to(Pool.AllocationState.STOPPING, t)
            locked.touch(t)
            locked.save()
    return locked


def can_remove_nodes(pool: Pool) -> BatchError | None:
    """Remove Nodes has the rules of Resize: a steady pool that is not autoscaled."""
    return can_resize_pool(pool)


def remove_nodes(
    pool: Pool,
    *,
    node_ids: list[str],
    node_deallocation_option: str | None = None,
    resize_timeout: timedelta | None = None,
    precondition: Precondition = None,
) -> Pool:
    """Remove the named nodes: each is asked to leave per nodeDeallocationOption (default
    requeue), and the pool's targets go down by the provider-managed nodes removed, so they
    are not replaced. Refuses what can_remove_nodes refuses, an empty list (400
    MissingRequiredProperty), more than 100 nodes, a resizeTimeout under 5 minutes or an
    unknown option (400 InvalidPropertyValue), a node not in the pool (404 NodeNotFound)."""
    if not node_ids:
        raise BatchError.missing_property("nodeList")
    if len(node_ids) > MAX_REMOVE_NODES:
        raise BatchError.invalid_property(
            "nodeList", len(node_ids), "At most 100 nodes may be removed per request."
        )
    pool_specs.check_resize_timeout(resize_timeout)
    option = pool_specs.check_deallocation_option(node_deallocation_option)
    with transaction.atomic():
        locked = _lock_pool(pool, precondition, can_remove_nodes)
        wanted = list(dict.fromkeys(node_ids))
        nodes = list(
            ComputeNode.objects.select_for_update().filter(pool=locked, node_id__in=wanted)
        )
        if len(nodes) != len(wanted):
            raise BatchError.node_not_found()
        leaving = [n for n in nodes if n.pending_action != ComputeNode.Action.REMOVE]
        ComputeNode.objects.filter(pk__in=[n.pk for n in leaving]).update(
            pending_action=ComputeNode.Action.REMOVE, action_option=option
        )
        managed = [n for n in leaving if is_managed(n)]
        dedicated = sum(1 for n in managed if n.is_dedicated)
        locked.target_dedicated_nodes = max(0, locked.target_dedicated_nodes - dedicated)
        locked.target_low_priority_nodes = max(
            0, locked.target_low_priority_nodes - (len(managed) - dedicated)
        )
        locked.resize_timeout = resize_timeout
        locked.node_deallocation_option = option
        _start_resize(locked)
        locked.touch(now())
        locked.save()
    return locked


def size_of(pool: Pool) -> sizes.VmSize | None:
    """The deployment's entry for the pool's vmSize today (None if it was removed)."""
    return sizes.lookup(pool.vm_size)
