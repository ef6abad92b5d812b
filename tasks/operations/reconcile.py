"""The reconciler: drives each pool's provider-managed nodes toward its targets.

One pass (`Reconciler.run_pass`, looped by `manage.py reconcile`):

1. Ask every provider in use what it really runs (`running()`), never trusting memory, so a
   restarted reconciler adopts the agents its predecessor started.
2. For each pool, on its own (one pool's failure never stops the others):
   - a node asked to leave (pending_action=remove) whose agent is not running — never
     started, dead, or a Slurm job still queued — is removed: what it still ran is
     requeued, its row deleted, the provider told to stop it;
   - a pool being deleted disappears once its last node has left;
   - a managed node whose agent is not running and that was not asked to leave gets its
     agent started: a new node once its allocation time has passed, a crashed one again
     with the same node id, with a backoff;
   - while the pool is `resizing`: node rows are created (state `creating`, a
     `tvmps_<hex>_d|_p` id) for a shortfall and started, or the surplus nodes chosen and
     asked to leave per the pool's nodeDeallocationOption; the pool is `steady` once its
     nodes are allocated (the provider runs their agents: a Slurm job no longer queued,
     or the agent registered) and the leavers gone — as on Azure, where a pool is steady
     while its new nodes are still starting, so a script that waited for idle nodes
     finds the pool steady — or after resizeTimeout with an
     AllocationTimedout resizeError; a provider refusing to start a node ends the resize
     at once with the provider's error;
   - while `stopping` (Stop Resize): nodes not yet allocated are cancelled, then the pool
     is `steady` with a ResizeStopped resizeError for each kind short of its target.
3. Stop agents the provider runs for nodes that no longer exist.
4. Evaluate the autoscale formulas that are due, and sample every pool's metrics each
   BATCHSITE_POOL_SAMPLE_SECONDS (tasks.operations.autoscale).

Every transition is a locked read-check-write of the pool row, so an API call changing the
pool meanwhile is either seen or sees the result. The reconciler's own transitions
(resizing → steady) change neither the ETag nor lastModified, as the service's do not.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, transaction
from django.db.models import Q

from tasks.models import ComputeNode, NodeDeallocationOption, Pool
from tasks.nodehost import disk, identity, layout
from tasks.providers import registry
from tasks.providers.base import NodeLaunch, NodeProvider, ProviderError, RunningNode

from . import autoscale as autoscale_ops
from . import pools as pool_ops
from .attempt_store import used_slots
from .common import now
from .pool_specs import DEFAULT_RESIZE_TIMEOUT

log = logging.getLogger("batchsite.reconcile")

Key = tuple[str, str, str]  # (account name, lower-case pool id, node id)
BACKOFF_MAX_SECONDS = 60.0
FAST_SECONDS = 0.25  # between passes while a pool is resizing, stopping or being deleted
# How often a reconciler between passes looks whether a pool started to move (Add Pool, a
# resize, a deletion): one cheap query, so a new pool's nodes start at once rather than
# up to a whole interval later.
WAKE_SECONDS = 0.1
STANDBY_SECONDS = 2.0  # how often a reconciler waiting for the lock tries again
LOCK_KEY = 0x62617463  # PostgreSQL advisory lock of the reconciler ("batc")
HEALTHY_AFTER_SECONDS = 60.0  # an agent alive this long after a restart resets its backoff
KINDS = ((True, "dedicated"), (False, "low priority"))
# A node without a provider handle is the reconciler's only while `creating`.
_HAND_STARTED_STATES = [
    state for state in ComputeNode.State.values if state != ComputeNode.State.CREATING
]
# Which nodes leave first when a pool shrinks: those without an agent yet, then nodes not
# taking work, then idle ones, then busy ones (fewest slots in use first).
_REMOVAL_RANK = {ComputeNode.State.IDLE: 3, ComputeNode.State.RUNNING: 4}


@dataclass
class _Backoff:
    failures: int = 0
    next_try: float = 0.0
    started: float = 0.0


class Leadership:
    """One reconciler acts per database at a time: two would both start the nodes of a
    shortfall. On PostgreSQL a session advisory lock (it goes with the connection: after a
    reconnect it is taken again, or another reconciler has it); on SQLite, whose database
    is on this machine, an exclusive lock on `<data dir>/reconcile.lock`."""

    def __init__(self) -> None:
        self._held_on = None
        self._file = None

    def acquire(self) -> bool:
        from django.db import connection

        if connection.vendor == "postgresql":
            connection.ensure_connection()
            if self._held_on is connection.connection:
                return True
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                held = bool(cursor.fetchone()[0])
            self._held_on = connection.connection if held else None
            return held
        if self._file is None:
            import fcntl

            handle = open(settings.DATA_DIR / "reconcile.lock", "a")  # noqa: SIM115 - held while we run
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._file = handle
        return True

    def release(self) -> None:
        from django.db import connection

        if self._held_on is not None and self._held_on is connection.connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        self._held_on = None
        if self._file is not None:
            self._file.close()
            self._file = None


def new_node_id(dedicated: bool) -> str:
    return f"tvmps_{secrets.token_hex(16)}_{'d' if dedicated else 'p'}"


def key_of(pool: Pool, node_id: str) -> Key:
    return (pool.account.name, pool.pool_id.lower(), node_id)


def resize_error(code: str, message: str, values: list[tuple[str, str]] = ()) -> dict:
    """A ResizeError in wire form."""
    error = {"code": code, "message": message}
    if values:
        error["values"] = [{"name": name, "value": value} for name, value in values]
    return error


class Reconciler:
    def __init__(self, *, providers: dict[str, NodeProvider] | None = None) -> None:
        self._providers = dict(providers or {})
        self._backoff: dict[int, _Backoff] = {}
        self._next_samples = 0.0

    def provider(self, name: str) -> NodeProvider:
        if name not in self._providers:
            self._providers[name] = registry.get_provider(name)
        return self._providers[name]

    # --- a pass --------------------------------------------------------------------------

    def run_pass(self) -> dict[str, int]:
        """Reconcile every pool once. Database errors propagate (the loop reconnects);
        provider and per-pool failures are contained."""
        counts = {"pools": 0, "started": 0, "removed": 0, "stopped": 0}
        pools = list(Pool.objects.select_related("account").order_by("pk"))
        # Pools on the move: the loop looks again sooner (FAST_SECONDS) until they settle.
        counts["busy"] = sum(
            1
            for p in pools
            if p.state == Pool.State.DELETING or p.allocation_state != Pool.AllocationState.STEADY
        )
        running: dict[str, dict[Key, RunningNode] | None] = {}
        failures: dict[str, str] = {}
        for name in sorted({p.provider for p in pools} | set(self._providers)):
            try:
                running[name] = {
                    (r.account, r.pool_id.lower(), r.node_id): r
                    for r in self.provider(name).running()
                }
            except Exception as e:  # noqa: BLE001 - a provider failure is reported, never fatal
                log.warning("provider %s could not list its nodes: %s", name, e)
                running[name], failures[name] = None, _describe(e)
        for pool in pools:
            try:
                self._pool(pool, running.get(pool.provider), failures.get(pool.provider), counts)
            except (DatabaseError, InterfaceError):
                raise
            except Exception:  # noqa: BLE001 - one pool's failure never stops the others
                log.exception("reconciling pool %s of %s failed", pool.pool_id, pool.account.name)
            counts["pools"] += 1
        counts["stopped"] += self._stop_orphans(running)
        counts["evaluated"] = autoscale_ops.evaluate_due_pools()
        clock = time.monotonic()
        if clock >= self._next_samples:
            self._next_samples = clock + settings.BATCHSITE_POOL_SAMPLE_SECONDS
            counts["sampled"] = autoscale_ops.record_samples()
        return counts

    def _pool(
        self,
        pool: Pool,
        running: dict[Key, RunningNode] | None,
        failure: str | None,
        counts: dict[str, int],
    ) -> None:
        if running is None:
            if pool.allocation_state != Pool.AllocationState.STEADY:
                _add_resize_errors(
                    pool,
                    [
                        resize_error(
                            "AllocationFailed",
                            failure or "The node provider failed.",
                            [("Provider", pool.provider)],
                        )
                    ],
                )
            return
        provider = self.provider(pool.provider)
        counts["removed"] += self._remove_leavers(
            pool, list(ComputeNode.objects.filter(pool=pool)), running, provider
        )
        if pool.state == Pool.State.DELETING:
            pool_ops.finish_pool_deletion(pool)
            return
        if pool.allocation_state != Pool.AllocationState.STEADY:
            self._size(pool, [], running)
        failures = []
        for node in ComputeNode.objects.filter(pool=pool).exclude(
            pending_action=ComputeNode.Action.REMOVE
        ):
            if pool_ops.is_managed(node):
                error = self._keep_running(
                    pool, node, running.get(key_of(pool, node.node_id)), provider, counts
                )
                if error:
                    failures.append(error)
        if failures:
            self._size(pool, failures, running)

    # --- leaving -------------------------------------------------------------------------

    def _remove_leavers(
        self,
        pool: Pool,
        nodes: list[ComputeNode],
        running: dict[Key, RunningNode],
        provider: NodeProvider,
    ) -> int:
        """Nodes asked to leave that no agent will drain: requeue their work, delete them."""
        removed = 0
        gone = set(
            ComputeNode.objects.filter(pool_ops.hand_started_gone(), pool=pool).values_list(
                "pk", flat=True
            )
        )
        for node in nodes:
            if node.pending_action != ComputeNode.Action.REMOVE:
                continue
            seen = running.get(key_of(pool, node.node_id))
            if pool_ops.is_managed(node):
                if seen is not None and not seen.pending:
                    continue  # its agent drains and leaves by itself
            elif node.pk not in gone:
                continue  # a hand-started agent, alive: it leaves by itself
            if pool_ops.drop_node(node):
                removed += 1
                self._backoff.pop(node.pk, None)
                handle = seen.handle if seen is not None else node.provider_handle
                if handle:
                    _stop(provider, handle, graceful=False)
                if pool.provider == "local":
                    # The node's disk goes with it, as a VM's does (its agent, had it been
                    # alive, would have wiped it on leaving), never through a link its
                    # tasks left (tasks.nodehost.disk).
                    nodes = layout.nodes_dir(settings.DATA_DIR)
                    key = layout.node_key(pool.account.name, pool.pool_id, node.node_id)
                    task_keys = layout.task_keys(nodes, key)
                    disk.remove(nodes, key)
                    for task_key in task_keys:
                        identity.forget_task_user(pool.account.name, pool.pool_id, task_key)
        return removed

    # --- keeping agents running ----------------------------------------------------------

    def _keep_running(
        self,
        pool: Pool,
        node: ComputeNode,
        seen: RunningNode | None,
        provider: NodeProvider,
        counts: dict[str, int],
    ) -> dict | None:
        if seen is not None:
            if seen.handle != node.provider_handle:  # adopted, or restarted behind our back
                ComputeNode.objects.filter(pk=node.pk).update(provider_handle=seen.handle)
            backoff = self._backoff.get(node.pk)
            if backoff and time.monotonic() - backoff.started > HEALTHY_AFTER_SECONDS:
                del self._backoff[node.pk]
            return None
        if node.state == ComputeNode.State.CREATING and not node.provider_handle:
            due = (node.allocation_time or node.registered) + timedelta(
                seconds=settings.BATCHSITE_NODE_ALLOCATION_SECONDS
            )
            if now() < due:
                return None
        return self._start(pool, node, provider, counts)

    def _start(
        self, pool: Pool, node: ComputeNode, provider: NodeProvider, counts: dict[str, int]
    ) -> dict | None:
        """Start the node's agent (again), unless its backoff says wait. A refused first
        start returns its resizeError (it ends the resize); a refused restart is recorded
        on the pool and tried again after the backoff."""
        backoff = self._backoff.setdefault(node.pk, _Backoff())
        clock = time.monotonic()
        if clock < backoff.next_try:
            return None
        size = pool_ops.size_of(pool)
        launch = NodeLaunch(
            account=pool.account.name,
            pool_id=pool.pool_id,
            node_id=node.node_id,
            slots=node.slots,
            is_dedicated=node.is_dedicated,
            options=dict(size.options) if size else {},
        )
        restart = bool(node.provider_handle) or node.state != ComputeNode.State.CREATING
        backoff.failures += 1
        backoff.next_try = clock + min(BACKOFF_MAX_SECONDS, 2.0 ** (backoff.failures - 1))
        backoff.started = clock
        try:
            handle = provider.start(launch)
        except Exception as e:  # noqa: BLE001 - any provider failure becomes a resizeError
            log.warning(
                "provider %s could not start node %s of pool %s: %s",
                pool.provider,
                node.node_id,
                pool.pool_id,
                e,
            )
            error = resize_error(
                e.code if isinstance(e, ProviderError) else "AllocationFailed",
                _describe(e),
                [("Provider", pool.provider)],
            )
            if restart:
                _add_resize_errors(pool, [error])
                return None
            return error
        if restart:
            log.warning(
                "restarted the agent of node %s of pool %s (attempt %d)",
                node.node_id,
                pool.pool_id,
                backoff.failures,
            )
        else:
            backoff.failures, backoff.next_try = 0, 0.0  # a first start is no failure
        ComputeNode.objects.filter(pk=node.pk).update(provider_handle=handle)
        counts["started"] += 1
        return None

    def _stop_orphans(self, running: dict[str, dict[Key, RunningNode] | None]) -> int:
        """Agents a provider runs for nodes that no longer exist (their pool was deleted
        under them, or they left and have not exited yet) are stopped."""
        known = {
            (a, p, n)
            for a, p, n in ComputeNode.objects.values_list(
                "pool__account__name", "pool__id_key", "node_id"
            )
        }
        stopped = 0
        for name, nodes in running.items():
            for key, seen in (nodes or {}).items():
                if key not in known:
                    _stop(self.provider(name), seen.handle, graceful=not seen.pending)
                    stopped += 1
        return stopped

    # --- the loop ------------------------------------------------------------------------

    def run(self, *, interval: float, should_stop, lock: Leadership | None = None) -> None:
        """Pass after pass until should_stop() is true, while this reconciler holds the
        database's reconciler lock (another one that holds it makes this one wait, ready to
        take over). A database error (a restart of PostgreSQL, a locked SQLite) closes the
        connection and the next pass reconnects."""
        from django.db import close_old_connections, connection

        lock = lock or Leadership()
        while not should_stop():
            started = time.monotonic()
            pause, watch = interval, False
            try:
                if not lock.acquire():
                    pause = STANDBY_SECONDS
                elif self.run_pass()["busy"]:
                    pause = min(interval, FAST_SECONDS)
                else:
                    watch = interval > WAKE_SECONDS  # all settled: wake when one moves
            except (DatabaseError, InterfaceError) as e:
                log.warning("reconciler: database error, retrying: %s", e)
                try:
                    connection.close()
                except Exception:  # noqa: BLE001
                    pass
                close_old_connections()
            except Exception:  # noqa: BLE001 - the loop must outlive any bug in one pass
                log.exception("reconciler pass failed")
            look = started + WAKE_SECONDS
            while not should_stop() and time.monotonic() - started < pause:
                if watch and time.monotonic() >= look:
                    look = time.monotonic() + WAKE_SECONDS
                    if _pools_moving():
                        break
                time.sleep(min(0.05, pause))

    def shutdown(self, *, timeout: float) -> int:
        """A clean stop: the agents of the local provider get SIGTERM (they requeue their
        work and take their nodes offline), SIGKILL after `timeout`. Agents of other
        providers (Slurm jobs) keep running. Returns how many agents it stopped."""
        provider = self.provider("local")
        agents = [r for r in provider.running() if not r.pending]
        for agent in agents:
            _stop(provider, agent.handle, graceful=True)
        deadline = time.monotonic() + timeout
        handles = {a.handle for a in agents}
        while handles and time.monotonic() < deadline:
            time.sleep(0.05)
            handles &= {r.handle for r in provider.running()}
        for handle in handles:
            _stop(provider, handle, graceful=False)
        return len(agents)

    # --- sizing --------------------------------------------------------------------------

    def _size(self, pool: Pool, failures: list[dict], running: dict[Key, RunningNode]) -> None:
        """One locked step of a resize or stop: create or choose nodes, or settle."""
        t = now()
        with transaction.atomic():
            locked = Pool.objects.select_for_update().filter(pk=pool.pk).first()
            if locked is None or locked.state != Pool.State.ACTIVE:
                return
            if locked.allocation_state == Pool.AllocationState.STEADY:
                return
            nodes = [n for n in ComputeNode.objects.filter(pool=locked) if pool_ops.is_managed(n)]
            staying = [n for n in nodes if n.pending_action != ComputeNode.Action.REMOVE]
            leaving = [n for n in nodes if n.pending_action == ComputeNode.Action.REMOVE]
            targets = {True: locked.target_dedicated_nodes, False: locked.target_low_priority_nodes}
            timeout = locked.resize_timeout or DEFAULT_RESIZE_TIMEOUT
            since = locked.allocation_state_transition_time or locked.last_modified
            if locked.allocation_state == Pool.AllocationState.STOPPING:
                if _cancel_unallocated(staying):
                    return
                if not leaving:
                    _settle(
                        locked,
                        [
                            resize_error(
                                "ResizeStopped",
                                f"Desired number of {label} nodes could not be "
                                "allocated due to a stop resize operation",
                            )
                            for kind, label in KINDS
                            if _counted(staying, kind) != targets[kind]
                        ],
                    )
                return
            if failures:
                # The provider refused a node: the resize ends here, as Batch's does on a
                # quota or allocation failure; nodes it never started are cancelled.
                _cancel_unallocated(staying, drop=True)
                _settle(locked, failures)
                return
            if t - since > timeout:
                _cancel_unallocated(staying)
                _settle(
                    locked,
                    [
                        resize_error(
                            "AllocationTimedout",
                            f"Desired number of {label} nodes could not "
                            "be allocated as the resize timeout was reached",
                        )
                        for kind, label in KINDS
                        if _allocated(pool, staying, kind, running) < targets[kind]
                    ],
                )
                return
            created = shrinking = False
            room = _local_room() if locked.provider == "local" else None
            goal = dict(targets)  # what this resize can reach (less when the quota stops it)
            for kind, _ in KINDS:
                have = [n for n in staying if n.is_dedicated == kind]
                if len(have) < targets[kind]:
                    count = targets[kind] - len(have)
                    if room is not None:
                        count, room = min(count, room), room - min(count, room)
                        goal[kind] = len(have) + count
                    for _ in range(count):
                        _new_node(locked, kind, t)
                    created = created or count > 0
                elif len(have) > targets[kind]:
                    _ask_to_leave(
                        _removal_order(have)[: len(have) - targets[kind]],
                        locked.node_deallocation_option or NodeDeallocationOption.REQUEUE,
                    )
                    shrinking = True
            if (
                not created
                and not leaving
                and not shrinking
                and all(_allocated(pool, staying, kind, running) == goal[kind] for kind, _ in KINDS)
            ):
                _settle(
                    locked,
                    [
                        resize_error(
                            "AccountCoreQuotaReached",
                            f"Desired number of {label} nodes could not be allocated as this "
                            f"machine's quota of local nodes (BATCHSITE_LOCAL_MAX_NODES="
                            f"{settings.BATCHSITE_LOCAL_MAX_NODES}) was reached",
                        )
                        for kind, label in KINDS
                        if goal[kind] < targets[kind]
                    ],
                )


def _pools_moving() -> bool:
    """Whether a pool is resizing, stopping or being deleted (the next pass has work). A
    database error says no: the next pass, at its time, reconnects."""
    try:
        return Pool.objects.filter(
            Q(state=Pool.State.DELETING) | ~Q(allocation_state=Pool.AllocationState.STEADY)
        ).exists()
    except (DatabaseError, InterfaceError):
        return False


def _local_room() -> int:
    """How many more nodes the local provider may run on this machine (all pools)."""
    used = (
        ComputeNode.objects.filter(pool__provider="local")
        .exclude(provider_handle="", state__in=_HAND_STARTED_STATES)
        .count()
    )
    return max(0, settings.BATCHSITE_LOCAL_MAX_NODES - used)


def _describe(error: Exception) -> str:
    return error.message if isinstance(error, ProviderError) else f"{type(error).__name__}: {error}"


def _stop(provider: NodeProvider, handle: str, *, graceful: bool) -> None:
    try:
        provider.stop(handle, graceful=graceful)
    except Exception as e:  # noqa: BLE001 - the next pass sees what still runs
        log.warning("provider %s could not stop %s: %s", provider.name, handle, e)


def _counted(nodes: list[ComputeNode], dedicated: bool) -> int:
    return sum(1 for n in nodes if n.is_dedicated == dedicated)


def _allocated(
    pool: Pool, nodes: list[ComputeNode], dedicated: bool, running: dict[Key, RunningNode]
) -> int:
    """Nodes allocated: their agent registered (no longer `creating`), or the provider
    runs it (started, and not a Slurm job still waiting in the queue)."""

    def allocated(n: ComputeNode) -> bool:
        if n.state != ComputeNode.State.CREATING:
            return True
        seen = running.get(key_of(pool, n.node_id)) if n.provider_handle else None
        return seen is not None and not seen.pending

    return sum(1 for n in nodes if n.is_dedicated == dedicated and allocated(n))


def _new_node(pool: Pool, dedicated: bool, t) -> ComputeNode:
    return ComputeNode.objects.create(
        pool=pool,
        node_id=new_node_id(dedicated),
        state=ComputeNode.State.CREATING,
        is_dedicated=dedicated,
        slots=pool.task_slots_per_node,
        allocation_time=t,
        registered=t,
        last_heartbeat=t,
        state_transition_time=t,
    )


def _removal_order(nodes: list[ComputeNode]) -> list[ComputeNode]:
    busy = used_slots([n.pk for n in nodes])

    def rank(node: ComputeNode) -> int:
        if node.state == ComputeNode.State.CREATING:
            return 1 if node.provider_handle else 0
        return _REMOVAL_RANK.get(node.state, 2)

    return sorted(
        nodes,
        key=lambda n: (
            rank(n),
            busy.get(n.pk, 0),
            -(n.allocation_time or n.registered).timestamp(),
        ),
    )


def _ask_to_leave(nodes: list[ComputeNode], option: str) -> None:
    ComputeNode.objects.filter(pk__in=[n.pk for n in nodes]).update(
        pending_action=ComputeNode.Action.REMOVE, action_option=option
    )


def _cancel_unallocated(nodes: list[ComputeNode], *, drop: bool = False) -> bool:
    """Ask nodes not yet allocated (still `creating`) to leave; with `drop`, delete the
    ones no agent was ever started for. Returns whether there were any."""
    pending = [n for n in nodes if n.state == ComputeNode.State.CREATING]
    if drop:
        ComputeNode.objects.filter(pk__in=[n.pk for n in pending if not n.provider_handle]).delete()
        pending = [n for n in pending if n.provider_handle]
    _ask_to_leave(pending, NodeDeallocationOption.REQUEUE)
    return bool(pending)


def _settle(pool: Pool, errors: list[dict]) -> None:
    """The resize is over: steady, with its errors (no ETag change: the service's own)."""
    Pool.objects.filter(pk=pool.pk).update(
        **Pool.allocation_move_values(Pool.AllocationState.STEADY, now()),
        resize_errors=_merged(pool.resize_errors, errors),
    )


def _merged(existing: list[dict], new: list[dict]) -> list[dict]:
    out = list(existing or [])
    for error in new:
        if not any(
            e.get("code") == error["code"] and e.get("message") == error["message"] for e in out
        ):
            out.append(error)
    return out


def _add_resize_errors(pool: Pool, errors: list[dict]) -> None:
    with transaction.atomic():
        locked = Pool.objects.select_for_update().filter(pk=pool.pk).first()
        if locked is not None:
            merged = _merged(locked.resize_errors, errors)
            if merged != locked.resize_errors:
                Pool.objects.filter(pk=pool.pk).update(resize_errors=merged)
