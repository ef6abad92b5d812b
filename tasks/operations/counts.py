"""The job's maintained task counters: every task state change adjusts them in the same
transaction, so task counts and the dashboard's progress bars cost one row read."""

from __future__ import annotations

from collections import Counter

from tasks.models import Job, Task

from . import sql

BUCKETS = ("active", "running", "completed", "succeeded", "failed")


def buckets_of(state: str, result: str) -> tuple[str, ...]:
    if state == Task.State.ACTIVE:
        return ("active",)
    if state in (Task.State.PREPARING, Task.State.RUNNING):
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

    def apply(self, job_pk: int) -> None:
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
            statement = statements[key] = (f"UPDATE {qn(Job._meta.db_table)} SET {sets} "
                                           f"WHERE {qn(Job._meta.pk.column)} = %s")
        sql.run(statement, [*changes.values(), job_pk], c=c)


def recount_job(job: Job) -> None:
    """Recompute a job's counters from its tasks (repair tool for the admin and tests)."""
    from django.db.models import Count, Q, Sum

    agg = Task.objects.filter(job=job).aggregate(
        active_count=Count("pk", filter=Q(state="active")),
        running_count=Count("pk", filter=Q(state__in=["preparing", "running"])),
        completed_count=Count("pk", filter=Q(state="completed")),
        succeeded_count=Count("pk", filter=Q(state="completed", result="success")),
        failed_count=Count("pk", filter=Q(state="completed", result="failure")),
        active_slots=Sum("required_slots", filter=Q(state="active"), default=0),
        running_slots=Sum("required_slots", filter=Q(state__in=["preparing", "running"]), default=0),
        completed_slots=Sum("required_slots", filter=Q(state="completed"), default=0),
        succeeded_slots=Sum("required_slots", filter=Q(state="completed", result="success"), default=0),
        failed_slots=Sum("required_slots", filter=Q(state="completed", result="failure"), default=0),
    )
    Job.objects.filter(pk=job.pk).update(**agg)
