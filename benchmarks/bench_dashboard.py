"""Dashboard pages at 1,000,000 tasks in a job vs 1,000 (issue 4; target ratio <= 1.5), and
the CSV export of 1,000,000 tasks in flat memory (peak RSS printed).

Both jobs live in one SQLite database of its own (BATCHSITE_DATA_DIR, default
benchmarks/out/dashboard, kept between runs so the million rows are inserted once), or,
with a PostgreSQL DATABASE_URL, in that database (migrated; kept between runs too: name
one of its own). Each
page goes through the whole Django stack (session, access, query, templates) with the
test client, signed in as a superuser. Each figure is the median of --repeat requests
after a warm-up; the ratio is big/small in the same run.

The CSV export runs in a fresh child process per job (so its peak RSS is the export's
own), streaming the response chunk by chunk as a browser would receive it.

Usage: .venv/bin/python benchmarks/bench_dashboard.py [--big 1000000] [--small 1000] [--repeat 15]
       [--only "job analytics"] [--no-export]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ROOT, describe_run, median_ms, timed

DEFAULT_DIR = ROOT / "benchmarks" / "out" / "dashboard"
NODES = [f"node-{i}" for i in range(16)]

PAGES = [
    # (label, query string, expected to be index-backed)
    ("jobs page", None, True),
    ("first task page", "", True),
    ("failed, sorted by exit code desc", "state=completed&result=failure&sort=-exit_code", True),
    ("exit code 137, newest first", "exit_code=137&sort=-created", True),
    ("completed, id desc, page 2", "state=completed&sort=-id&page2=1", True),
    ("node filter, by id", "node=node-3", True),
    ("id substring", "q=0004", True),
    ("a page in the middle of the job", "middle=1", True),
    ("id substring matching nothing", "q=zzz", False),
    ("sorted by run time (no index)", "sort=-runtime", False),
    ("sorted by start time", "sort=started", True),
    ("sorted by end time, newest first", "sort=-ended", True),
    ("sorted by retries", "sort=-retries", True),
    # Sub-pages of the job (issue 12): a path after the job's URL.
    ("job analytics", "/analytics/", True),
    # Both jobs add a task every 50 ms: 20 s in the middle of either holds ~400 runs.
    ("node timeline, 20 s in the middle", "/timeline/?middle=20", True),
    # The latest runs: all 800 of the small job's, the latest 2,000 of the big one's.
    ("node timeline, latest runs", "/timeline/", False),
]


def setup(data_dir) -> None:
    os.environ["BATCHSITE_DATA_DIR"] = str(data_dir)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        os.environ.pop("DATABASE_URL", None)  # the benchmark's own SQLite file
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchsite.settings")
    import django

    django.setup()


def insert_tasks(job, count: int) -> None:
    """Raw rows, fast: 60% succeeded, 12% failed (exit 1 or 137), the rest running or
    active; times spread over a day, 16 nodes."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from tasks.models import Task
    from tasks.operations.counts import recount_job

    t0 = timezone.now() - timedelta(days=1)
    table = Task._meta.db_table
    cols = ["job_id", "task_id", "id_key", "display_name", "command_line", "required_slots", "number_of_instances",
            "retention_time", "max_task_retry_count", "spec", "state", "previous_state", "state_transition_time",
            "creation_time", "last_modified", "etag", "result", "retry_count", "requeue_count", "node_name",
            "pool_id", "affinity_id", "task_root_directory", "read_iops", "write_iops", "read_io_gib",
            "write_io_gib", "files_cleaned", "lifetime_expired", "exit_code", "start_time", "end_time",
            "failure_info"]
    sql = f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join(['%s'] * len(cols))})"
    week = 7 * 86400 * 1_000_000 if connection.vendor == "sqlite" else "7 days"
    failure = json.dumps({"category": "usererror", "code": "FailureExitCode", "message": "exit"})
    batch = []
    with transaction.atomic(), connection.cursor() as cur:
        for i in range(count):
            tid = f"task-{i:07d}"
            created = t0 + timedelta(milliseconds=i * 50)
            kind = i % 25
            state, result, code, start, end, fail, node = "active", "", None, None, None, None, ""
            if kind < 18:  # completed
                node = NODES[i % len(NODES)]
                start = created + timedelta(seconds=5 + i % 7)
                end = start + timedelta(seconds=10 + (i * 7919) % 600)
                state = "completed"
                if kind < 15:
                    result, code = "success", 0
                else:
                    result, code, fail = "failure", (137 if kind == 17 else 1), failure
            elif kind < 20:
                state, node, start = "running", NODES[i % len(NODES)], created + timedelta(seconds=3)
            batch.append((job.pk, tid, tid, "", "/bin/true", 1, 1, week, 0, "{}", state, "", created, created,
                          created, "0x8D1", result, 1 if kind >= 15 and i % 3 == 0 else 0, 0, node, "p", "", "",
                          0, 0, 0.0, 0.0, False, False, code, start, end, fail))
            if len(batch) == 20_000:
                cur.executemany(sql, batch)
                batch.clear()
        if batch:
            cur.executemany(sql, batch)
    recount_job(job)


def insert_attempts(job) -> None:
    """One attempt per task that started, as its task ended (or still running), in one
    INSERT ... SELECT."""
    from django.db import connection, transaction

    from tasks.models import Attempt, Task

    sql = (f"INSERT INTO {Attempt._meta.db_table} (task_id, job_id, number, node_name, slots, claimed, start_time,"
           " end_time, exit_code, outcome, cancel_requested, task_dir, run_as)"
           " SELECT id, job_id, 1, node_name, 1, start_time, start_time, end_time, exit_code,"
           " CASE WHEN state = 'running' THEN 'running' WHEN result = 'success' THEN 'succeeded' ELSE 'failed' END,"
           f" '', '', '' FROM {Task._meta.db_table} WHERE job_id = %s AND start_time IS NOT NULL")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, [job.pk])


def ensure_data(big: int, small: int):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from tasks.models import Account, Job

    call_command("migrate", verbosity=0)
    account, _ = Account.objects.get_or_create(name="bench", defaults={"primary_key": "YmVuY2g="})
    for label, count in (("small", small), ("big", big)):
        job = Job.objects.filter(account=account, id_key=label).first()
        if job is not None and job.total_count == count:
            if not job.attempts.exists():  # made by a run from before the timeline was measured
                started = time.perf_counter()
                insert_attempts(job)
                print(f"  inserted the attempts of job {label} in {time.perf_counter() - started:.1f} s", flush=True)
            continue
        if job is not None:
            job.delete()
        now = timezone.now()
        job = Job.objects.create(account=account, job_id=label, id_key=label, pool_id="p", etag="0x1",
                                 state_transition_time=now, creation_time=now, last_modified=now, start_time=now)
        started = time.perf_counter()
        insert_tasks(job, count)
        insert_attempts(job)
        print(f"  inserted {count:,} tasks into job {label} in {time.perf_counter() - started:.1f} s", flush=True)
    User = get_user_model()
    if not User.objects.filter(username="bench").exists():
        User.objects.create_superuser("bench", "", "bench-password")


def measure_pages(repeat: int, only: str = "") -> list[tuple[str, float, float, bool]]:
    import re

    from django.contrib.auth import get_user_model
    from django.test import Client

    from tasks.listing import TaskFilter, encode_cursor
    from tasks.models import Job, Task

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))

    def url(label: str, query: str | None) -> str:
        if query is None:
            return f"/web/?tab=all&q={label}"
        base = f"/web/bench/jobs/{label}/"
        if query.startswith("/"):
            if "middle=20" in query:
                from datetime import timedelta

                from tasks.listing import _format_moment

                middle = Job.objects.get(account__name="bench", id_key=label).total_count // 2
                since = Task.objects.get(job__account__name="bench", job__id_key=label,
                                         id_key=f"task-{middle:07d}").start_time
                until = since + timedelta(seconds=20)
                return f"{base}timeline/?from={_format_moment(since)}&to={_format_moment(until)}"
            return base.rstrip("/") + query
        if query == "middle=1":
            # the page after the job's middle task: a keyset cursor costs what page 1 costs
            middle = Job.objects.get(account__name="bench", id_key=label).total_count // 2
            return f"{base}?after=" + encode_cursor(0, Task(id_key=f"task-{middle:07d}"), TaskFilter())
        if "page2=1" in query:
            # follow the first page's "Next" link: a keyset cursor, not an OFFSET
            q = query.replace("&page2=1", "")
            body = client.get(f"{base}?{q}").content.decode()
            return f"{base}?{q}&after=" + re.search(r'after=([\w-]+)" rel="next"', body).group(1)
        return f"{base}?{query}"

    figures = []
    for name, query, indexed in PAGES:
        if only and only not in name:
            continue
        targets = {label: url(label, query) for label in ("small", "big")}
        samples: dict[str, list[float]] = {"small": [], "big": []}
        for target in targets.values():
            r = client.get(target)  # warm-up
            assert r.status_code == 200, (target, r.status_code)
        # Alternate small and big so a busy neighbour slows both alike.
        for _ in range(repeat):
            for label, target in targets.items():
                samples[label] += timed(lambda target=target: client.get(target), 1)
        figures.append((name, median_ms(samples["small"]), median_ms(samples["big"]), indexed))
    return figures


def export_child(label: str) -> None:
    """In a child process: stream the job's CSV export and print rows, seconds, peak RSS."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    started = time.perf_counter()
    response = client.get(f"/web/bench/jobs/{label}/export.csv")
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    # VmHWM, this process's own high-water mark: getrusage's ru_maxrss also counts the
    # parent's peak, which a child started with vfork inherits across exec.
    status = open("/proc/self/status").read()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"rows": lines - 1, "seconds": seconds, "peak_mib": peak_kib / 1024}))


def measure_export(label: str, data_dir) -> dict:
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(data_dir))
    command = [sys.executable, __file__, "--export-child", label, "--data-dir", str(data_dir)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR") or str(DEFAULT_DIR))
    parser.add_argument("--export-child", default="")
    parser.add_argument("--only", default="", help="measure only the pages whose name holds this")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV export")
    args = parser.parse_args()
    data_dir = args.data_dir
    os.makedirs(data_dir, exist_ok=True)
    setup(data_dir)
    if args.export_child:
        export_child(args.export_child)
        return
    from django.db import connection

    where = f"SQLite at {data_dir}" if connection.vendor == "sqlite" else f"PostgreSQL {connection.settings_dict['NAME']}"
    print(f"Dashboard benchmark, {where}")
    print(f"  {describe_run()}")
    ensure_data(args.big, args.small)
    figures = measure_pages(args.repeat, args.only)
    print(f"\n{'page':<36}{args.small:>10,} tasks{args.big:>14,} tasks{'ratio':>8}")
    worst = 0.0
    for name, small, big, indexed in figures:
        ratio = big / small
        if indexed:
            worst = max(worst, ratio)
        note = "" if indexed else "  (not held to the target)"
        print(f"{name:<36}{small:>13.1f} ms{big:>17.1f} ms{ratio:>8.2f}{note}")
    print(f"worst ratio of the index-backed pages: {worst:.2f} (target <= 1.5)")
    if args.no_export:
        return
    print("\nCSV export, streamed (a child process per job):")
    for label in ("small", "big"):
        e = measure_export(label, data_dir)
        print(f"  {label:<6}{e['rows']:>10,} rows in {e['seconds']:6.1f} s "
              f"({e['rows'] / e['seconds']:,.0f} rows/s), peak RSS {e['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
