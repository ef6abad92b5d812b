"""The soak run's look at the database itself, run as a subprocess with the served
instance's environment (its DATABASE_URL or data dir): per job, duplicate ids, the
maintained counters against the rows, attempts still running, attempts of one task that
overlap in time, requeues; and the nodes. Prints one JSON object.

Usage (the soak runs it): BATCHSITE_DATA_DIR=... [DATABASE_URL=...] python benchmarks/_soak_db.py JOB_PREFIX
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")

import django  # noqa: E402

django.setup()

from django.db.models import Count, Q, Sum  # noqa: E402

from tasks.models import Attempt, ComputeNode, Job, Task  # noqa: E402

RUNNING = ["preparing", "running"]
COUNTERS = {
    "active_count": Count("pk", filter=Q(state="active")),
    "running_count": Count("pk", filter=Q(state__in=RUNNING)),
    "completed_count": Count("pk", filter=Q(state="completed")),
    "succeeded_count": Count("pk", filter=Q(state="completed", result="success")),
    "failed_count": Count("pk", filter=Q(state="completed", result="failure")),
    "active_slots": Sum("required_slots", filter=Q(state="active"), default=0),
    "running_slots": Sum("required_slots", filter=Q(state__in=RUNNING), default=0),
    "completed_slots": Sum("required_slots", filter=Q(state="completed"), default=0),
    "succeeded_slots": Sum(
        "required_slots", filter=Q(state="completed", result="success"), default=0
    ),
    "failed_slots": Sum("required_slots", filter=Q(state="completed", result="failure"), default=0),
}


def overlapping_attempts(job: Job) -> dict[str, list]:
    """Attempts of one task whose [start, end] overlap, split by why the earlier one
    ended: a terminate or delete (its process is killed at the node's next look, while
    a reactivated task may already run again) or anything else (a task run twice)."""
    found: dict[str, list] = {"after_cancel": [], "other": []}
    previous: dict[int, tuple] = {}
    rows = (
        Attempt.objects.filter(job=job, subtask_id=None, start_time__isnull=False)
        .order_by("task_id", "start_time", "pk")
        .values_list(
            "task_id", "pk", "start_time", "end_time", "cancel_requested", "outcome", "node_name"
        )
    )
    for task_pk, pk, start, end, cancel, outcome, node in rows:
        before = previous.get(task_pk)
        if before is not None and (before[3] is None or start < before[3]):
            kind = "after_cancel" if before[4] in ("terminate", "delete") else "other"
            overlap_ms = round((before[3] - start).total_seconds() * 1000, 1) if before[3] else None
            found[kind].append(
                {
                    "task": task_pk,
                    "attempts": [before[1], pk],
                    "overlap_ms": overlap_ms,
                    "earlier": {"outcome": before[5], "node": before[6]},
                    "later_node": node,
                }
            )
        previous[task_pk] = (task_pk, pk, start, end, cancel, outcome, node)
    return found


def main() -> None:
    prefix = sys.argv[1]
    out: dict = {"jobs": {}, "nodes": []}
    for job in Job.objects.filter(job_id__startswith=prefix).order_by("job_id"):
        tasks = Task.objects.filter(job=job)
        rows = tasks.aggregate(**COUNTERS)
        stored = {name: getattr(job, name) for name in COUNTERS}
        duplicates = list(
            tasks.values("id_key")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .values_list("id_key", flat=True)[:20]
        )
        totals = tasks.aggregate(
            requeues=Sum("requeue_count", default=0),
            retries=Sum("retry_count", default=0),
            requeued_tasks=Count("pk", filter=Q(requeue_count__gt=0)),
        )
        out["jobs"][job.job_id] = {
            "tasks": tasks.count(),
            "counters_stored": stored,
            "counters_from_rows": rows,
            "counters_equal": stored == rows,
            "duplicate_ids": duplicates,
            "running_attempts": Attempt.objects.filter(
                job=job, outcome=Attempt.Outcome.RUNNING
            ).count(),
            "attempts": Attempt.objects.filter(job=job).count(),
            "overlaps": overlapping_attempts(job),
            **totals,
        }
    for node in ComputeNode.objects.order_by("node_id"):
        out["nodes"].append(
            {
                "id": node.node_id,
                "state": node.state,
                "slots": node.slots,
                "running_attempts": Attempt.objects.filter(
                    node=node, outcome=Attempt.Outcome.RUNNING
                ).count(),
                "total_tasks_run": node.total_tasks_run,
            }
        )
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
