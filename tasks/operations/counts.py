"""The job's maintained task counters: every task state change adjusts them in the same
transaction, so task counts and the dashboard's progress bars cost one row read.

The counter row is the one row every agent and every add writes. Inside `one_pass()`
(an agent's report-and-claim transaction) the changes are summed per job and written
once, as the transaction's last statements, in job order: the row's lock is then held
for the commit only, and two writers of several jobs take them in the same order.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable

from tasks import sql
from tasks.models import Job, Task

BUCKETS = ("active", "running", "completed", "succeeded", "failed")


def buckets_of(state: str, result: str) -> tuple[str, ...]:
    if state == Task.State.ACTIVE:
        return ("active",)
    if state in Task.RUNNING_STATES:
        return ("running",)
    if result == Task.Result.SUCCESS:
        return ("completed", "succeeded")
    if result == Task.Result.FAILURE:
        return ("completed", "failed")
    return ("completed",)


class CountDelta:
    """Accumulates task moves between buckets; `apply` writes them in one UPDATE."""

    def __init__(self) -> None:
        self.tasks: Counter[str] = Counter()
        self.slots: Counter[str] = Counter()

    def add(self, state: str, result: str, slots: int, sign: int = 1) -> None:
        for bucket in buckets_of(state, result):
            self.tasks[bucket] += sign
            self.slots[bucket] += sign * slots

    def move(self, old: tuple[str, str], new: tuple[str, str], slots: int) -> None:
        self.add(*old, slots, -1)
        self.add(*new, slots, +1)

    def merge(self, other: CountDelta) -> None:
        self.tasks.update(other.tasks)
        self.slots.update(other.slots)

    def pending(self, bucket: str) -> int:
        """The change to `bucket`'s task count not written yet."""
        return self.tasks[bucket]

    def apply(self, job_pk: int) -> None:
        """Write the changes to the job's counters (inside one_pass(): at its end)."""
        summed = _pending()
        if summed is not None:
            summed.deltas[job_pk].merge(self)
            return
        self.write(job_pk)

    def write(self, job_pk: int) -> None:
        changes = {}
        for bucket in BUCKETS:
            if self.tasks[bucket]:
                changes[f"{bucket}_count"] = self.tasks[bucket]
            if self.slots[bucket]:
                changes[f"{bucket}_slots"] = self.slots[bucket]
        if not changes:
            return
        # `SET c = c + %s`, written out: the same statement as update(c=F("c") + n), without
        # compiling expressions, since node agents run it twice for every batch of tasks.
        c = sql.conn()
        statements = sql.cache(c)
        key = ("counters", tuple(changes))
        statement = statements.get(key)
        if statement is None:
            qn = c.ops.quote_name
            columns = [qn(Job._meta.get_field(name).column) for name in changes]
            sets = ", ".join(f"{column} = {column} + %s" for column in columns)
            statement = statements[key] = (
                f"UPDATE {qn(Job._meta.db_table)} SET {sets} WHERE {qn(Job._meta.pk.column)} = %s"
            )
        sql.run(statement, [*changes.values(), job_pk], c=c)


def counting_added(insert: str) -> str:
    """`insert` (an INSERT of one job's new active tasks, RETURNING id, id_key,
    required_slots) and the job's active counters raised by the rows it inserted, as one
    PostgreSQL statement (a data-modifying CTE: one round trip where a separate UPDATE
    would take another, and the counter row's lock is then held only for the commit).
    Its parameters are the insert's, then the job's pk; it returns (id, id_key) per row
    inserted."""
    statements = sql.cache()
    key = ("counting added", insert)
    statement = statements.get(key)
    if statement is None:
        qn = sql.conn().ops.quote_name
        job = qn(Job._meta.db_table)
        active, slots = (
            qn(Job._meta.get_field(f).column) for f in ("active_count", "active_slots")
        )
        statement = statements[key] = (
            f"WITH added AS ({insert}), "
            f"counted AS (UPDATE {job} SET {active} = {active} + a.n, {slots} = {slots} + a.s "
            f"FROM (SELECT count(*) AS n, sum(required_slots) AS s FROM added) a "
            f"WHERE {job}.{qn(Job._meta.pk.column)} = %s AND a.n > 0) "
            f"SELECT id, id_key FROM added"
        )
    return statement


class _Summed:
    """The counter changes of one pass, and what must run once they are written."""

    def __init__(self) -> None:
        self.deltas: dict[int, CountDelta] = defaultdict(CountDelta)
        self.first: list[Callable[[], None]] = []
        self.then: list[Callable[[], None]] = []


def _pending() -> _Summed | None:
    return getattr(sql.conn(), "_batchsite_counts", None)


def pending_tasks(job_pk: int, bucket: str) -> int:
    """This pass's change to a job's `bucket` count that is not written yet (0 outside
    one_pass): what a read of the counter inside the pass must add."""
    summed = _pending()
    if summed is None or job_pk not in summed.deltas:
        return 0
    return summed.deltas[job_pk].pending(bucket)


def before_counters(action: Callable[[], None]) -> None:
    """Run `action` now, or inside one_pass() just before the counters are written (job
    actions that lock the job FOR UPDATE: taken before this pass holds the counter row,
    which another agent holding the job's KEY SHARE may be waiting for)."""
    summed = _pending()
    if summed is None:
        action()
    else:
        summed.first.append(action)


def after_counters(action: Callable[[], None]) -> None:
    """Run `action` now, or inside one_pass() once the counters are written (checks that
    read them, such as onAllTasksComplete)."""
    summed = _pending()
    if summed is None:
        action()
    else:
        summed.then.append(action)


@contextlib.contextmanager
def one_pass():
    """One transaction whose counter changes are written once per job at its end."""
    from django.db import transaction

    with transaction.atomic():
        c = sql.conn()
        if getattr(c, "_batchsite_counts", None) is not None:
            yield  # nested: the outer pass writes them
            return
        summed = c._batchsite_counts = _Summed()
        try:
            yield
            for action in summed.first:
                action()  # their own changes join the sums
            c._batchsite_counts = None
            for job_pk in sorted(summed.deltas):
                summed.deltas[job_pk].write(job_pk)
            for action in summed.then:
                action()
        finally:
            c._batchsite_counts = None


def recount_job(job: Job) -> None:
    """Recompute a job's counters from its tasks (repair tool for the admin and tests)."""
    from django.db.models import Count, Q, Sum

    agg = Task.objects.filter(job=job).aggregate(
        active_count=Count("pk", filter=Q(state=Task.State.ACTIVE)),
        running_count=Count("pk", filter=Q(state__in=Task.RUNNING_STATES)),
        completed_count=Count("pk", filter=Q(state=Task.State.COMPLETED)),
        succeeded_count=Count(
            "pk", filter=Q(state=Task.State.COMPLETED, result=Task.Result.SUCCESS)
        ),
        failed_count=Count("pk", filter=Q(state=Task.State.COMPLETED, result=Task.Result.FAILURE)),
        active_slots=Sum("required_slots", filter=Q(state=Task.State.ACTIVE), default=0),
        running_slots=Sum(
            "required_slots",
            filter=Q(state__in=Task.RUNNING_STATES),
            default=0,
        ),
        completed_slots=Sum("required_slots", filter=Q(state=Task.State.COMPLETED), default=0),
        succeeded_slots=Sum(
            "required_slots",
            filter=Q(state=Task.State.COMPLETED, result=Task.Result.SUCCESS),
            default=0,
        ),
        failed_slots=Sum(
            "required_slots",
            filter=Q(state=Task.State.COMPLETED, result=Task.Result.FAILURE),
            default=0,
        ),
    )
    Job.objects.filter(pk=job.pk).update(**agg)
