"""20,000 tasks added through the 15.x SDK's create_tasks(max_concurrency=8) against a
gunicorn-served batchsite, beside a same-run raw bulk insert of the same rows
(issue 2; target >= 5,000 tasks/s on a 2-core machine).

DATABASE_URL=postgres://... measures on PostgreSQL (a fresh test_<db>); the first line
printed names the database.

PostgreSQL (issue 13). Where the time went (2026-12-01, a throwaway PostgreSQL 15
cluster with pg_stat_statements beside the shared one, load average 6-11 on 2 CPUs, so
every figure is several times its idle value):
  - In the web tier, not the server: add_task_collection of 100 tasks took 178 ms in
    process on PostgreSQL against 71 ms on SQLite. Profiled, most of the difference was
    psycopg converting the query: the 100-row INSERT's VALUES list (4,000 placeholders,
    ~20 kB of text) is re-parsed on every call, as psycopg caches only statements under
    4 kB, and such a statement is never prepared either. Then the round trips: BEGIN,
    the job FOR UPDATE (an ORM query, compiled), a SELECT of the ids already taken,
    SAVEPOINT, the INSERT, RELEASE, a SELECT of the new pks, the counters' UPDATE,
    pg_notify, COMMIT: 10 statements per request.
  - Server side (pg_stat_statements): a 100-row INSERT is 25 ms alone and 42 ms with 8
    clients at load 10 (~27 shared buffer hits per row: the task table's indexes; one
    foreign-key check per row, 6 us). The difference is the job row: every add took it
    FOR UPDATE, so adds to one job ran one at a time, and every add's counters' UPDATE
    waits for the previous add's commit (the counter row is the hot row: see below).
What changed: the job is taken FOR KEY SHARE (shared by adds and the agents, excluded
only by the job's own operations, which take it FOR UPDATE), prepared, with a fallback
that waits when one of those holds it; the rows go as one array per column in one
INSERT ... SELECT FROM unnest(...) ON CONFLICT (job, id_key) DO NOTHING RETURNING, whose
CTE also raises the job's counters (tasks.operations.fast_insert.insert_skipping,
counts.counting_added): the unique index finds the duplicates (no read before), RETURNING
gives the pks (no read after), a short statement psycopg converts once and the server
prepares once. BEGIN, lock, insert+counters, pg_notify, COMMIT: 5 statements. SQLite takes
the same INSERT as a VALUES list (and its counters' UPDATE after it).
In process, add_task_collection of 100 tasks, the same hour and load (~9):
  PostgreSQL 178 -> 83 ms, SQLite 71 -> 41 ms.
Left: the counters' UPDATE still serializes the commits of adds to one job (and of the
agents' reports): counter delta rows would remove it, but the claim reads the job row's
counters (attempts.py), so that change waits for the hot path's split; psycopg dumps the
4,000 values of a request as text arrays in Python (a third of the operation's time under
the profiler); DRF validates every task (100 tasks: 187 ms at load 21, the operation ~3x
less at load 9): on both databases the largest part of a request now, the wire side's.

2026-12-03 (a fresh machine, nothing else running): the 100 tasks' arrays are bound in
binary (%b): psycopg dumped a text array in Python, a regular expression per element to
quote it, 2.8 ms for a request's 42 columns, and dumps a binary one in 0.8 ms. 20,000
tasks, PostgreSQL, main at the session's start (868816c) and this interleaved: 0.63, 0.64,
0.65, 0.65, 0.67 -> 0.71, 0.72 of a raw insert (6,253-7,218 -> 7,167-7,680 tasks/s);
SQLite 0.90 (its path unchanged).

Usage: [DATABASE_URL=...] .venv/bin/python benchmarks/bench_create_tasks.py [--tasks 20000] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import ROOT, describe_run, free_port, setup_django, wait_port


def raw_bulk_insert(job, count: int) -> float:
    """The baseline: the same rows straight into the table with bulk_create."""
    from django.utils import timezone

    from tasks.models import Task

    now = timezone.now()
    rows = [
        Task(
            job=job,
            task_id=f"raw{i:06d}",
            id_key=f"raw{i:06d}",
            command_line="/bin/true",
            state_transition_time=now,
            creation_time=now,
            last_modified=now,
            etag="0x8D1",
        )
        for i in range(count)
    ]
    t = time.perf_counter()
    Task.objects.bulk_create(rows, batch_size=1000)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data = setup_django("create")

    from azure.batch import BatchClient
    from azure.batch import models as m
    from azure.core.credentials import AzureNamedKeyCredential
    from django.utils import timezone

    from tasks.models import Account, Job, Task

    account = Account.objects.create(
        name="bench", primary_key="YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
    )
    now = timezone.now()
    baseline_job = Job.objects.create(
        account=account,
        job_id="raw",
        id_key="raw",
        pool_id="p",
        etag="0x1",
        state_transition_time=now,
        creation_time=now,
        last_modified=now,
        start_time=now,
    )
    raw_seconds = raw_bulk_insert(baseline_job, args.tasks)

    port = free_port()
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(data))
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "batchsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_port(port)
        client = BatchClient(
            endpoint=f"http://127.0.0.1:{port}",
            credential=AzureNamedKeyCredential(account.name, account.primary_key),
        )
        client.create_job(m.BatchJobCreateOptions(id="sdk", pool_info=m.BatchPoolInfo(pool_id="p")))
        tasks = [
            m.BatchTaskCreateOptions(id=f"sdk{i:06d}", command_line="/bin/true")
            for i in range(args.tasks)
        ]
        t = time.perf_counter()
        result = client.create_tasks("sdk", tasks, max_concurrency=args.threads)
        sdk_seconds = time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(10)
    assert len(result.result_values) == args.tasks
    assert Task.objects.filter(job__job_id="sdk").count() == args.tasks
    assert Job.objects.get(job_id="sdk").active_count == args.tasks
    sdk_rate, raw_rate = args.tasks / sdk_seconds, args.tasks / raw_seconds
    print(
        f"create_tasks of {args.tasks:,} tasks, {args.threads} threads, gunicorn {args.workers}x4"
    )
    print(f"  {describe_run()}")
    print(f"  through the SDK and API : {sdk_rate:>10,.0f} tasks/s ({sdk_seconds:.2f} s)")
    print(f"  raw bulk insert (same run): {raw_rate:>8,.0f} tasks/s ({raw_seconds:.2f} s)")
    print(f"  ratio SDK/raw: {sdk_rate / raw_rate:.2f}   target: >= 5,000 tasks/s through the SDK")


if __name__ == "__main__":
    main()
