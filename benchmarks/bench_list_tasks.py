"""List Tasks: a 1000-task page with $filter on state, at 1,000,000 tasks in the job vs
10,000 (issue 2; target ratio <= 1.5).

Both jobs live in the same database; each request goes through the whole API stack
(Shared Key, OData, query, wire JSON) with Django's test client.
Usage: .venv/bin/python benchmarks/bench_list_tasks.py [--big 1000000] [--small 10000]
"""

from __future__ import annotations

import argparse
import json

from _common import describe_run, median_ms, setup_django, timed


def insert_tasks(job, count: int) -> None:
    """Raw rows, fast: a third completed (half of those failed), the rest active."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tasks.models import Task
    from tasks.operations.counts import recount_job

    now = timezone.now()
    table = Task._meta.db_table
    cols = ["job_id", "task_id", "id_key", "display_name", "command_line", "required_slots", "number_of_instances",
            "retention_time", "max_task_retry_count", "spec", "state", "previous_state", "state_transition_time",
            "creation_time", "last_modified", "etag", "result", "retry_count", "requeue_count", "node_name",
            "pool_id", "affinity_id", "task_root_directory", "read_iops", "write_iops", "read_io_gib",
            "write_io_gib", "files_cleaned", "lifetime_expired", "exit_code"]
    placeholders = ",".join(["%s"] * len(cols))
    sql = f"INSERT INTO {table} ({','.join(cols)}) VALUES ({placeholders})"
    week = 7 * 86400 * 1_000_000 if connection.vendor == "sqlite" else "7 days"
    batch = []
    with transaction.atomic(), connection.cursor() as cur:
        for i in range(count):
            tid = f"task-{i:07d}"
            completed = i % 3 == 0
            result = ("failure" if i % 2 else "success") if completed else ""
            batch.append((job.pk, tid, tid, "", "/bin/true", 1, 1, week, 0, "{}",
                          "completed" if completed else "active", "", now, now, now, "0x8D1", result, 0, 0,
                          "", "", "", "", 0, 0, 0.0, 0.0, False, False,
                          (1 if i % 2 else 0) if completed else None))
            if len(batch) == 20_000:
                cur.executemany(sql, batch)
                batch.clear()
        if batch:
            cur.executemany(sql, batch)
    recount_job(job)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    setup_django("list")

    from django.utils import timezone

    from tasks.models import Account, Job
    from tests.conftest import BatchTestClient

    account = Account.objects.create(name="bench", primary_key="YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA=")
    jobs = {}
    for label, count in (("small", args.small), ("big", args.big)):
        now = timezone.now()
        job = Job.objects.create(account=account, job_id=label, id_key=label, pool_id="p", etag="0x1",
                                 state_transition_time=now, creation_time=now, last_modified=now, start_time=now)
        insert_tasks(job, count)
        jobs[label] = job
    from django.db import connection

    if connection.vendor == "sqlite":
        connection.cursor().execute("ANALYZE")
    client = BatchTestClient(account)

    def page(job_id: str, state: str, after: str | None = None):
        params = {"$filter": f"state eq '{state}'", "maxresults": "1000"}
        if after:
            params["$skiptoken"] = after
        r = client.get(f"/jobs/{job_id}/tasks", params=params)
        assert r.status_code == 200, r.content
        body = json.loads(r.content)
        assert len(body["value"]) == 1000
        return body

    figures = {}
    for state in ("completed", "active"):
        for label in ("small", "big"):
            page(label, state)  # warm up
            figures[(state, label)] = median_ms(timed(lambda label=label, state=state: page(label, state),
                                                      args.repeat))
    print(f"List Tasks, 1000-task page, $filter=state  ({connection.vendor})")
    print(f"  {describe_run()}")
    print(f"{'filter':<12}{args.small:>12,} tasks{args.big:>14,} tasks{'ratio':>10}")
    worst = 0.0
    for state in ("completed", "active"):
        small, big = figures[(state, "small")], figures[(state, "big")]
        ratio = big / small
        worst = max(worst, ratio)
        print(f"{state:<12}{small:>15.1f} ms{big:>17.1f} ms{ratio:>10.2f}")
    print(f"worst ratio big/small: {worst:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
