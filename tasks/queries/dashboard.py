"""The dashboard's lists other than a job's tasks (tasks.queries.task_list): the jobs of
the accounts a user sees, the audit trail, a job's failures grouped for triage."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.fields.json import KT

from tasks.models import AuditRecord, BulkOperation, Job, Task
from tasks.queries import pager
from tasks.queries.pager import INT, Key, Order, Page
from tasks.queries.task_list import storable

JOB_ORDER = Order.by(Key("account_id", INT), Key("id_key"))
AUDIT_ORDER = Order.by(Key("pk", INT), desc=True)  # newest first


def _lenient(qs, order: Order, *, after: str, limit: int) -> Page:
    """A page after the cursor; a cursor that is not one of this list's (a hand-edited or
    truncated URL) gives the first page."""
    try:
        return pager.page(qs, order, after=after, limit=limit)
    except pager.BadCursor:
        return pager.page(qs, order, limit=limit)


def list_dashboard_jobs(
    account_pks: list[int], *, where: Q, contains: str = "", after: str = "", limit: int
) -> Page:
    """The jobs of these accounts, keyset-paged by (account, id), their accounts loaded;
    `contains` narrows to ids holding it (case-insensitive). One query."""
    jobs = Job.objects.filter(account_id__in=account_pks).filter(where).select_related("account")
    if contains:
        q = contains.strip().lower()
        jobs = jobs.filter(id_key__contains=q) if storable(q) else jobs.none()
    return _lenient(jobs, JOB_ORDER, after=after, limit=limit)


def list_audit_records(accounts, *, chosen: dict[str, str], after: str = "", limit: int) -> Page:
    """The audit trail of these accounts, newest first, keyset-paged by pk, filtered by
    account (name), actor, action (exact) and job; each record with its account and the pk
    of the bulk run it started (`bulk_pk`). One query."""
    records = AuditRecord.objects.filter(account__in=accounts)
    for key, value in chosen.items():
        if not storable(value):
            records = records.none()
        elif key == "account":
            records = records.filter(account__name=value)
        elif key == "job":
            records = records.filter(scope__job=value)
        else:
            records = records.filter(**{key: value})
    bulk = BulkOperation.objects.filter(audit=OuterRef("pk")).values("pk")[:1]
    records = records.select_related("account").annotate(bulk_pk=Subquery(bulk))
    return _lenient(records, AUDIT_ORDER, after=after, limit=limit)


def count_failures(job: Job, *, limit: int) -> dict[str, list[tuple[object, int]]]:
    """A job's failed tasks counted by exit code, failure code and node: for each, the
    `limit` largest groups as (value, tasks), largest first. Three queries."""
    failed = Task.objects.filter(job=job, state=Task.State.COMPLETED, result=Task.Result.FAILURE)
    by_exit = failed.values("exit_code").annotate(n=Count("pk")).order_by("-n", "exit_code")
    by_code = (
        failed.annotate(code=KT("failure_info__code"))
        .values("code")
        .annotate(n=Count("pk"))
        .order_by("-n", "code")
    )
    by_node = failed.values("node_name").annotate(n=Count("pk")).order_by("-n", "node_name")
    return {
        "exit_code": [(r["exit_code"], r["n"]) for r in by_exit[:limit]],
        "failure_code": [(r["code"], r["n"]) for r in by_code[:limit]],
        "node": [(r["node_name"], r["n"]) for r in by_node[:limit]],
    }
