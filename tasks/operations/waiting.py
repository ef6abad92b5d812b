"""Why an active task is not running: the first of the claim's conditions
(tasks.operations.attempts.claim_work) that keeps every node from taking it, as a
structured reason the task page shows.

Each rule below reads the same facts the claim reads and names the same constants
(SCHEDULABLE_NODE_STATES, satisfies_dependency, the job counters), and
tests/operations/test_waiting.py checks each one against the claim: while the reason
holds no node takes the task; once it is gone a node does. A read, never a write: it
changes nothing. Rules that hold for good come first (a dependency that failed, a task
that needs more slots than any node has), then those that pass by themselves.

Cost: at most four queries for an active task (its pool; the pool's nodes with the slots
their running attempts hold, aggregated; its dependencies, see tasks.queries.dependencies; the
older active tasks ahead of it, counted up to CLAIM_SCAN_LIMIT on the (job, state,
creation_time) index), none for any other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, Sum

from tasks.models import Attempt, ComputeNode, Job, Pool, Task
from tasks.queries.dependencies import summarise_dependencies

from . import claim_scan
from .attempt_rules import SCHEDULABLE_NODE_STATES
from .common import now
from .counts import pending_tasks


@dataclass(frozen=True)
class Waiting:
    """One reason: a stable `code` (tests and the template key on it), a sentence for
    people, whether it holds for good (`forever`: nothing changes it by itself), and the
    facts it names."""

    code: str
    message: str
    forever: bool = False
    facts: dict = field(default_factory=dict)


@dataclass
class _Node:
    node_id: str
    state: str
    scheduling_enabled: bool
    slots: int
    used: int
    fresh: bool

    @property
    def takes_work(self) -> bool:
        """As the claim: idle or running with scheduling enabled, and alive."""
        return self.state in SCHEDULABLE_NODE_STATES and self.scheduling_enabled and self.fresh

    @property
    def free(self) -> int:
        return self.slots - self.used


class _Facts:
    """What the rules read about one task, each read once and only if a rule asks."""

    def __init__(self, task: Task, job: Job, dependencies=None) -> None:
        self.task, self.job = task, job
        self._dependencies = dependencies
        self._pool: Pool | None | bool = False
        self._nodes: list[_Node] | None = None

    @property
    def dependencies(self):
        if self._dependencies is None:
            self._dependencies = summarise_dependencies(self.task) or False
        return self._dependencies or None

    @property
    def pool(self) -> Pool | None:
        if self._pool is False:
            self._pool = Pool.objects.filter(
                account_id=self.job.account_id, id_key=self.job.pool_id.lower()
            ).first()
        return self._pool

    @property
    def nodes(self) -> list[_Node]:
        if self._nodes is None:
            fresh = now() - timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
            rows = (
                ComputeNode.objects.filter(pool=self.pool)
                .annotate(
                    used=Sum("attempts__slots", filter=Q(attempts__outcome=Attempt.Outcome.RUNNING))
                )
                .values_list(
                    "node_id", "state", "scheduling_enabled", "slots", "used", "last_heartbeat"
                )
            )
            self._nodes = [
                _Node(n, s, e, slots, used or 0, beat >= fresh)
                for n, s, e, slots, used, beat in rows
            ]
        return self._nodes

    @property
    def working(self) -> list[_Node]:
        return [n for n in self.nodes if n.takes_work]


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# --- the rules, in the order they are asked ----------------------------------------------


def _lifetime(f: _Facts) -> Waiting | None:
    if f.task.lifetime_expired:
        return Waiting(
            "lifetime_expired",
            "The task's 180-day lifetime expired: it is never scheduled again.",
            forever=True,
        )
    return None


def _job_state(f: _Facts) -> Waiting | None:
    state = f.job.state
    if state == Job.State.ACTIVE:
        return None
    if state in (Job.State.DISABLING, Job.State.DISABLED):
        return Waiting(
            "job_disabled",
            f"The job is {state}: no task of it starts until it is enabled.",
            facts={"state": state},
        )
    if state == Job.State.ENABLING:
        return Waiting(
            "job_enabling",
            "The job is being enabled: its tasks start once it is active.",
            facts={"state": state},
        )
    return Waiting(
        "job_ending",
        f"The job is {state}: none of its tasks starts any more.",
        forever=True,
        facts={"state": state},
    )


def _dependencies(f: _Facts) -> Waiting | None:
    deps = f.dependencies
    if deps is None or deps.unsatisfied == 0:
        return None
    if deps.blocked:
        first = deps.blocking[0] if deps.blocking else None
        how = ""
        if first is not None:
            how = (
                f" with exit code {first.exit_code}"
                if first.exit_code is not None
                else (f" ({first.failure_code})" if first.failure_code else "")
            )
        others = deps.counts["blocking"] - 1
        more = f" (and {_count(others, 'other dependency')})" if others > 0 else ""
        name = first.task_id if first else "a dependency"
        return Waiting(
            "dependency_failed",
            f"Blocked for good: dependency {name} failed{how}{more}, and its exit options block "
            "dependants (dependencyAction block). It runs only if that task is reactivated and succeeds.",
            forever=True,
            facts={
                "task_id": name,
                "exit_code": first.exit_code if first else None,
                "blocking": deps.counts["blocking"],
            },
        )
    missing = deps.counts["missing"]
    absent = f", {missing:,} of them not added to the job yet" if missing else ""
    return Waiting(
        "dependencies_waiting",
        f"Waits for its dependencies: {deps.satisfied:,} of {deps.total:,} satisfied "
        f"({deps.unsatisfied:,} not yet{absent}).",
        facts={"satisfied": deps.satisfied, "total": deps.total},
    )


def _pool_exists(f: _Facts) -> Waiting | None:
    if f.pool is not None:
        return None
    auto = bool((f.job.spec.get("poolInfo") or {}).get("autoPoolSpecification"))
    if auto:
        message = f"The job's auto pool {f.job.pool_id} does not exist (yet): it is being created, or was deleted."
    else:
        message = (
            f"Pool {f.job.pool_id or '(none)'} does not exist: the task starts once it is created."
        )
    return Waiting("no_pool", message, facts={"pool_id": f.job.pool_id, "auto_pool": auto})


def _slots_fit(f: _Facts) -> Waiting | None:
    # Batch accepts such a task at add (the job may move to another pool), and it never runs here.
    largest = max((n.slots for n in f.nodes), default=f.pool.task_slots_per_node)
    if f.task.required_slots <= largest:
        return None
    return Waiting(
        "slots_exceed_nodes",
        f"Can never run on pool {f.pool.pool_id}: it requires {f.task.required_slots} slots and its "
        f"nodes have at most {largest} (taskSlotsPerNode {f.pool.task_slots_per_node}).",
        forever=True,
        facts={"required": f.task.required_slots, "largest": largest},
    )


def _nodes_present(f: _Facts) -> Waiting | None:
    if f.nodes:
        return None
    target = f.pool.target_dedicated_nodes + f.pool.target_low_priority_nodes
    if target:
        message = (
            f"Pool {f.pool.pool_id} has no nodes yet ({_count(target, 'node')} wanted, allocation "
            f"{f.pool.allocation_state})."
        )
    else:
        message = (
            f"Pool {f.pool.pool_id} has no nodes (its target is 0): resize it or start a node."
        )
    return Waiting("no_nodes", message, facts={"pool_id": f.pool.pool_id, "target": target})


def _nodes_working(f: _Facts) -> Waiting | None:
    if f.working:
        return None
    states = Counter(
        "scheduling disabled"
        if n.state in SCHEDULABLE_NODE_STATES and not n.scheduling_enabled
        else ("not responding" if n.state in SCHEDULABLE_NODE_STATES else n.state)
        for n in f.nodes
    )
    listed = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return Waiting(
        "no_node_takes_work",
        f"No node of pool {f.pool.pool_id} takes work (only idle or running nodes with scheduling "
        f"enabled do): {listed}.",
        facts={"pool_id": f.pool.pool_id, "states": dict(states)},
    )


def _max_parallel(f: _Facts) -> Waiting | None:
    limit = f.job.max_parallel_tasks
    if limit == -1:
        return None
    running = f.job.running_count + pending_tasks(f.job.pk, "running")
    if running < limit:
        return None
    return Waiting(
        "max_parallel",
        f"The job is at its maxParallelTasks: {running:,} of {limit:,} running.",
        facts={"running": running, "limit": limit},
    )


def _instances(f: _Facts) -> Waiting | None:
    wanted = f.task.number_of_instances
    if wanted <= 1:
        return None
    working = f.working
    if len(working) < wanted:
        return Waiting(
            "needs_nodes",
            f"Needs {wanted} nodes at once (multi-instance); pool {f.pool.pool_id} has "
            f"{_count(len(working), 'node')} that take work.",
            facts={"wanted": wanted, "nodes": len(working)},
        )
    free = sum(1 for n in working if n.free > 0)
    if free < wanted:
        return Waiting(
            "needs_nodes_at_once",
            f"Needs {wanted} nodes at once, {free} free.",
            facts={"wanted": wanted, "free": free},
        )
    return None


def _slots_free(f: _Facts) -> Waiting | None:
    working = f.working
    if any(n.free >= f.task.required_slots for n in working):
        return None
    used, total = sum(n.used for n in working), sum(n.slots for n in working)
    need = f" with {f.task.required_slots} free" if f.task.required_slots > 1 else ""
    return Waiting(
        "slots_busy",
        f"All slots are busy: {used:,} of {total:,} in use; it waits for a node{need}.",
        facts={"used": used, "total": total},
    )


def _within_scan(f: _Facts) -> Waiting | None:
    # A claim reads at most about CLAIM_SCAN_LIMIT of a job's active tasks per pass, oldest
    # first, and goes on from where it stopped in its next pass (claim_scan): a task behind
    # that many that cannot start (waiting on dependencies, or too big for any node) is
    # reached a few passes later. Counted up to the limit only (one bounded query).
    limit = claim_scan.CLAIM_SCAN_LIMIT
    t = f.task
    older = (
        Task.objects.filter(job_id=t.job_id, state=Task.State.ACTIVE, lifetime_expired=False)
        .filter(
            Q(creation_time__lt=t.creation_time) | Q(creation_time=t.creation_time, pk__lt=t.pk)
        )
        .values("pk")[:limit]
    )
    n = older.count()
    if n < limit:
        return None
    return Waiting(
        "behind_scan_limit",
        f"Behind at least {n:,} older active tasks of its job: a claim reads about {limit:,} "
        "of them each pass and goes on from where it stopped in the next, so a node reaches "
        "this task a few passes later (sooner as the older tasks start or end).",
        facts={"older": n, "limit": limit},
    )


# Job preparation (jobPreparationTask) goes here, after the pool's nodes are asked: a rule
# `(facts) -> Waiting | None` saying the job's preparation task has not yet run, or failed,
# on every node that could take the task (Batch's task schedule fail event names the latter
# schedulingError JobPreparationTaskFailed), inserted in RULES where the claim refuses such
# a node, and tested against the claim in tests/operations/test_waiting.py.
RULES: list[Callable[[_Facts], Waiting | None]] = [
    _lifetime,
    _job_state,
    _dependencies,
    _pool_exists,
    _slots_fit,
    _nodes_present,
    _nodes_working,
    _max_parallel,
    _instances,
    _slots_free,
    _within_scan,
]


def explain_waiting(task: Task, *, dependencies=None) -> Waiting | None:
    """Why the active task is not running, or None for a task that is not active. With
    no rule holding, it is eligible: a node takes it at its next claim (jobs of higher
    priority, then older tasks, first). `dependencies` is the task's
    tasks.queries.dependencies.summarise_dependencies when the caller already has it."""
    if task.state != Task.State.ACTIVE:
        return None
    facts = _Facts(task, task.job, dependencies)
    for rule in RULES:
        reason = rule(facts)
        if reason is not None:
            return reason
    again = f" (retry {task.retry_count})" if task.retry_count else ""
    return Waiting(
        "eligible",
        f"eligible now{again}; a node takes it at its next claim (higher-priority jobs and older "
        "tasks first).",
    )
