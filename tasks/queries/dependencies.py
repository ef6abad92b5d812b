"""Reads of task dependencies (dependsOn): what one task waits for, summarised for the task
page, and which active tasks of a job can never run (the job page's "blocked" filter).

A dependency is satisfied exactly as the claim decides it
(tasks.exit_conditions.satisfies_dependency): it completed and succeeded, or failed
with an exit option whose dependencyAction is satisfy. A completed dependency that is not
satisfied blocks its dependants for good (until it is reactivated), and so does one of
those dependants for the tasks that depend on it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import NotSupportedError
from django.db.models import BooleanField, Count, Expression, Q

from tasks.exit_conditions import dependency_ids, satisfies_dependency
from tasks.models import Job, Task
from tasks.queries import pager
from tasks.queries.pager import Page

# The dependencies the task page lists on one page (tasks.queries.pager.page_list); all of
# them are counted by state.
LISTED = 50
# Ids per query when counting a large taskIdRanges (one IN list each: PostgreSQL takes
# 65,535 parameters per statement).
CHUNK = 10_000
# How a large pk set goes into one statement: long runs of consecutive pks as ranges (at
# most MAX_RANGES of them, OR-ed: SQLite refuses expressions nested 1,000 deep), the rest in
# IN lists; at most MAX_PARAMETERS parameters in all (PostgreSQL takes 65,535).
MAX_RANGES = 200
MAX_PARAMETERS = 60_000
IN_CHUNK = 10_000


@dataclass
class Dependency:
    """One dependency as the task page lists it: None fields for a task not (yet) added."""

    task_id: str
    state: str = "missing"  # missing | active | preparing | running | satisfied | blocking
    exit_code: int | None = None
    failure_code: str = ""


@dataclass
class DependencySummary:
    """What a task's dependsOn waits for: every dependency counted by state, one page of
    them listed (LISTED, in dependsOn order), and those that block it for good (at most
    LISTED of them, in dependsOn order)."""

    total: int = 0
    counts: Counter = field(default_factory=Counter)
    listed: list[Dependency] = field(default_factory=list)
    blocking: list[Dependency] = field(default_factory=list)
    ranges: list[dict] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    page: Page | None = None  # where `listed` is in dependsOn, and its neighbours' cursors

    @property
    def satisfied(self) -> int:
        return self.counts["satisfied"]

    @property
    def unsatisfied(self) -> int:
        return self.total - self.satisfied

    @property
    def blocked(self) -> bool:
        return self.counts["blocking"] > 0

    @property
    def more(self) -> int:
        """How many are not on the page shown."""
        return self.total - len(self.listed)

    @property
    def first_shown(self) -> int:
        """The position in dependsOn (from 1) of the first one listed."""
        return (self.page.start if self.page else 0) + 1

    @property
    def last_shown(self) -> int:
        return self.first_shown + len(self.listed) - 1

    def parts(self) -> list[tuple[str, int]]:
        """(state, how many) in a fixed order, without the empty ones."""
        order = ("satisfied", "blocking", "running", "preparing", "active", "missing")
        return [(s, self.counts[s]) for s in order if self.counts[s]]


def _state_of(row: dict) -> str:
    if row["state"] != Task.State.COMPLETED:
        return row["state"]
    satisfied = satisfies_dependency(
        row["result"], row["spec"], row["exit_code"], row["failure_info"]
    )
    return "satisfied" if satisfied else "blocking"


def _dependency(task_id: str, row: dict | None) -> Dependency:
    if row is None:
        return Dependency(task_id)
    return Dependency(
        row["task_id"],
        _state_of(row),
        row["exit_code"],
        (row["failure_info"] or {}).get("code", ""),
    )


_ROW = ("id_key", "task_id", "state", "result", "exit_code", "failure_info", "spec")


def summarise_dependencies(
    task: Task, *, after: str = "", before: str = ""
) -> DependencySummary | None:
    """The task's dependencies with their states, or None if it has no dependsOn; `listed`
    is the page of them after (or before) the cursor (tasks.queries.pager.page_list; a
    cursor that is not one of a list's gives the first page). One query for up to LISTED
    dependencies; a larger dependsOn costs one more query per CHUNK ids (its counts:
    active, running and satisfied ones aggregated by the database; a chunk with completed
    failures one more, to apply their exit options)."""
    depends_on = task.spec.get("dependsOn") or {}
    keys = list(dict.fromkeys(dependency_ids(depends_on)))
    if not keys:
        return None
    summary = DependencySummary(
        total=len(keys),
        ranges=list(depends_on.get("taskIdRanges") or []),
        task_ids=list(depends_on.get("taskIds") or []),
    )
    job_tasks = Task.objects.filter(job_id=task.job_id)
    try:
        summary.page = pager.page_list(keys, after=after, before=before, limit=LISTED)
    except pager.BadCursor:
        summary.page = pager.page_list(keys, limit=LISTED)
    head = summary.page.rows
    rows = {r["id_key"]: r for r in job_tasks.filter(id_key__in=head).values(*_ROW)}
    summary.listed = [_dependency(k, rows.get(k)) for k in head]
    if len(keys) <= LISTED:
        summary.counts.update(d.state for d in summary.listed)
        summary.blocking = [d for d in summary.listed if d.state == "blocking"]
        return summary
    found = 0
    for i in range(0, len(keys), CHUNK):
        chunk = job_tasks.filter(id_key__in=keys[i : i + CHUNK])
        failures = 0
        for state, result, n in (
            chunk.values_list("state", "result").annotate(n=Count("pk")).order_by()
        ):
            if state != Task.State.COMPLETED:
                summary.counts[state] += n
                found += n
            elif result == Task.Result.SUCCESS:
                summary.counts["satisfied"] += n
                found += n
            else:
                failures += n
        if not failures:
            continue
        for row in chunk.filter(state=Task.State.COMPLETED, result=Task.Result.FAILURE).values(
            *_ROW
        ):
            dependency = _dependency(row["id_key"], row)
            summary.counts[dependency.state] += 1
            found += 1
            if dependency.state == "blocking" and len(summary.blocking) < LISTED:
                summary.blocking.append(dependency)
    summary.counts["missing"] = len(keys) - found
    return summary


class WaitsOnOthers(Expression):
    """`spec` has a dependsOn, as the condition of the partial index task_job_state_depends
    (tasks.models.Task.Meta) spells it, literally: a query finds a partial index only when
    its WHERE holds the index's own term, and Django's has_key passes the key as a
    parameter, which neither SQLite nor a generic PostgreSQL plan can match to it."""

    conditional = True
    output_field = BooleanField()

    def as_sql(self, compiler, connection):
        raise NotSupportedError("the blocked filter needs SQLite or PostgreSQL")

    def _spec(self, compiler, connection) -> str:
        column = Task._meta.get_field("spec").column
        return (
            f"{connection.ops.quote_name(Task._meta.db_table)}.{connection.ops.quote_name(column)}"
        )

    def as_sqlite(self, compiler, connection):
        return f"JSON_TYPE({self._spec(compiler, connection)}, '$.\"dependsOn\"') IS NOT NULL", []

    def as_postgresql(self, compiler, connection):
        return f"{self._spec(compiler, connection)} ? 'dependsOn'", []


WAITS_ON_OTHERS = WaitsOnOthers()
# Past this many distinct dependency ids, the job's failed tasks are read by state instead of
# looked up by id.
LOOKUP_LIMIT = 10 * CHUNK


def blocked_task_pks(job: Job) -> set[int]:
    """The pks of the job's active tasks that can never run as things stand: a dependency
    completed without satisfying them, or is itself such a task. Index-backed: the active
    tasks that have a dependsOn come from the partial index task_job_state_depends (no
    other active task is read), and the failed ones among their dependencies by id (the
    (job, id_key) index, CHUNK ids a query) or, past LOOKUP_LIMIT distinct ids, by state
    (the (job, state) index). A job without usesTaskDependencies costs nothing."""
    if not job.uses_task_dependencies:
        return set()
    tasks = Task.objects.filter(job=job)
    waiting = list(
        tasks.filter(WAITS_ON_OTHERS, state=Task.State.ACTIVE).values_list(
            "pk", "id_key", "spec__dependsOn"
        )
    )
    if not waiting:
        return set()
    dependants: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pk, key, depends_on in waiting:
        for dependency in set(dependency_ids(depends_on or {})):
            dependants[dependency].append((pk, key))
    failed = tasks.filter(state=Task.State.COMPLETED, result=Task.Result.FAILURE)
    if len(dependants) <= LOOKUP_LIMIT:
        ids = list(dependants)
        rows = [
            row
            for i in range(0, len(ids), CHUNK)
            for row in failed.filter(id_key__in=ids[i : i + CHUNK]).values(*_ROW)
        ]
    else:
        rows = list(failed.values(*_ROW))
    dead = {row["id_key"] for row in rows if _state_of(row) == "blocking"}
    # Walk the dependants of every dead task, so a chain blocks all the way down.
    blocked: set[int] = set()
    todo = list(dead)
    while todo:
        for pk, key in dependants.pop(todo.pop(), []):
            if pk not in blocked:
                blocked.add(pk)
                todo.append(key)
    return blocked


def pk_runs(pks: set[int]) -> Q:
    """A Q matching these pks in a few parameters when they come in runs (tasks added
    together block together): the longest runs as ranges, the other pks listed. A scattered
    set needing more than MAX_PARAMETERS is cut, in pk (creation) order."""
    ordered = sorted(pks)
    if not ordered:
        return Q(pk__in=[])
    runs: list[tuple[int, int]] = []
    start = end = ordered[0]
    for pk in ordered[1:]:
        if pk != end + 1:
            runs.append((start, end))
            start = pk
        end = pk
    runs.append((start, end))
    longest = sorted((r for r in runs if r[1] - r[0] >= 2), key=lambda r: r[0] - r[1])[:MAX_RANGES]
    ranged = set(longest)
    listed = [pk for r in runs if r not in ranged for pk in range(r[0], r[1] + 1)]
    budget = MAX_PARAMETERS - 2 * len(longest)
    if len(listed) > budget:
        cut = listed[budget - 1] if budget > 0 else -1
        listed = listed[: max(budget, 0)]
        longest = [r for r in longest if r[0] <= cut] if budget > 0 else longest
    q = Q(pk__in=[])
    for low, high in sorted(longest):
        q |= Q(pk__range=(low, high))
    for i in range(0, len(listed), IN_CHUNK):
        q |= Q(pk__in=listed[i : i + IN_CHUNK])
    return q
