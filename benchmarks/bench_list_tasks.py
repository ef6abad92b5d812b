"""List Tasks: a 1000-task page with $filter on state, at 1,000,000 tasks in the job vs
10,000 (issue 2; target ratio <= 1.5).

Both jobs live in one SQLite database of its own (BATCHSITE_DATA_DIR, default
benchmarks/out/list, kept between runs so the million rows are inserted once), or, with a
PostgreSQL DATABASE_URL, in that database (migrated, kept between runs too, ANALYZEd once
built: name one of its own). Each request goes through the whole API stack (Shared Key,
OData, query, wire JSON) with Django's test client; each figure is the median of
--repeat pages after a warm-up, the ratio big/small in the same run.
The claim page (an agent's candidate_tasks, 4 rows) is measured on the same two jobs: every
task of a job here has one creation time, so claim order (creation time, pk) is the pk's
alone, the worst case for an index that ends in the creation time.

Figures (2026-12-02, 2 CPUs shared by five engineers, load average 5-12; 1,000,000 tasks vs
10,000, two thirds active, each job one creation time):
- List Tasks, worst ratio of the four listings: SQLite 0.95-1.41 over four runs, PostgreSQL
  0.97 and 1.16 (pages 150-350 ms on either job: the wire JSON of 1,000 tasks).
- Claim page on PostgreSQL, before migration 0015: 2,861 ms (ratio 94). EXPLAIN (ANALYZE,
  BUFFERS): Index Scan of (job, state, creation_time) -> Incremental Sort with one
  pre-sorted group of 666,666 rows, external merge, 69 MB on disk, 29,102 buffers read,
  3.0 s. After (the index ends in the pk on PostgreSQL): 2-4 ms (EXPLAIN 0.08 ms, 12
  buffers). A page after the middle task (a later page of a pass, or a resumed pass) was
  1,756 ms before and is 330-590 ms after: its `creation_time > t OR (creation_time = t
  AND id > p)` is a filter of every row before it (333,334 removed); the row comparison
  `(creation_time, id) > (t, p)` is an index condition there (0.1 ms in EXPLAIN, 4 ms a
  page): a change to tasks/operations/attempt_store.candidate_tasks, not made here.
  SQLite: 0.15-0.35 ms either page, either job (its index ends in the rowid).
Usage: .venv/bin/python benchmarks/bench_list_tasks.py [--big 1000000] [--small 10000]
       [--data-dir DIR]   DATABASE_URL=postgres://... measures PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import time

from _common import ROOT, analyze, describe_run, insert_task_rows, median_ms, setup_kept, timed

DEFAULT_DIR = ROOT / "benchmarks" / "out" / "list"


def insert_tasks(job, count: int) -> None:
    """Raw rows, fast: a third completed (half of those failed), the rest active."""
    from django.utils import timezone

    now = timezone.now()

    def rows():
        for i in range(count):
            fields = {}
            if i % 3 == 0:  # completed
                failed = i % 2 == 1
                fields = {
                    "state": "completed",
                    "result": "failure" if failed else "success",
                    "exit_code": 1 if failed else 0,
                }
            yield f"task-{i:07d}", now, fields

    insert_task_rows(job, rows())


def ensure_data(big: int, small: int):
    """The account and its two jobs, built unless a run before built them at these sizes;
    the planner's statistics refreshed after a build."""
    from django.core.management import call_command
    from django.utils import timezone

    from tasks.models import Account, Job

    call_command("migrate", verbosity=0)
    account, _ = Account.objects.get_or_create(
        name="bench", defaults={"primary_key": "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="}
    )
    built = False
    for label, count in (("small", small), ("big", big)):
        job = Job.objects.filter(account=account, id_key=label).first()
        if job is not None and job.total_count == count:
            continue
        if job is not None:
            job.delete()
        now = timezone.now()
        job = Job.objects.create(
            account=account,
            job_id=label,
            id_key=label,
            pool_id="p",
            etag="0x1",
            state_transition_time=now,
            creation_time=now,
            last_modified=now,
            start_time=now,
        )
        started = time.perf_counter()
        insert_tasks(job, count)
        built = True
        print(
            f"  inserted {count:,} tasks into job {label} in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    if built:
        analyze()
    return account


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR") or str(DEFAULT_DIR))
    parser.add_argument("--build-only", action="store_true", help="build the data, measure nothing")
    parser.add_argument("--explain", action="store_true", help="print the claim pages' plans")
    parser.add_argument("--claim-only", action="store_true", help="measure only the claim page")
    args = parser.parse_args()
    # A third of a job's tasks completed (insert_tasks): each state needs a full page and
    # one task before the page after "the middle".
    if min(args.big, args.small) < 3 * (PAGE + 1):
        parser.error(f"--big and --small must be {3 * (PAGE + 1):,} or more")
    os.makedirs(args.data_dir, exist_ok=True)
    setup_kept(args.data_dir)
    from django.db import connection

    from tests.conftest import BatchTestClient

    print(f"  {describe_run()}", flush=True)
    account = ensure_data(args.big, args.small)
    if args.build_only:
        return
    client = BatchTestClient(account)
    if args.claim_only:
        measure_claim(args.repeat, args.explain)
        return

    def page(job_id: str, state: str, after: str | None = None):
        params = {"$filter": f"state eq '{state}'", "maxresults": str(PAGE)}
        if after:
            params["$skiptoken"] = after
        r = client.get(f"/jobs/{job_id}/tasks", params=params)
        assert r.status_code == 200, r.content
        body = json.loads(r.content)
        assert len(body["value"]) == PAGE
        return body

    # The first page, and the page after the middle task's (a $skiptoken, as the SDK's
    # paging sends it): each pager walk must cost the same wherever it starts.
    listings = [
        (state, where) for state in ("completed", "active") for where in ("first", "middle")
    ]
    figures, afters = {}, {}
    for state, where in listings:
        for label in ("small", "big"):
            after = middle_token(client, label, state) if where == "middle" else None
            afters[(state, where, label)] = after
            page(label, state, after)  # warm up
        # The two jobs' pages taken in turns, so that a busy spell of the machine falls on both.
        samples = {"small": [], "big": []}
        for _ in range(args.repeat):
            for label in samples:
                after = afters[(state, where, label)]
                samples[label] += timed(lambda a=(label, state, after): page(*a), 1)
        for label, taken in samples.items():
            figures[(state, where, label)] = median_ms(taken)
    print(f"List Tasks, 1000-task page, $filter=state  ({connection.vendor})")
    print(f"  {describe_run()}")
    print(f"{'filter, page':<22}{args.small:>12,} tasks{args.big:>14,} tasks{'ratio':>10}")
    worst = 0.0
    for state, where in listings:
        small, big = figures[(state, where, "small")], figures[(state, where, "big")]
        ratio = big / small
        worst = max(worst, ratio)
        print(f"{state + ', ' + where:<22}{small:>15.1f} ms{big:>17.1f} ms{ratio:>10.2f}")
    print(f"worst ratio big/small: {worst:.2f} (target <= 1.5)")
    measure_claim(args.repeat, args.explain)


def claim_page(job, after, explain: bool = False) -> str:
    """One page of an agent's claim (attempt_store.candidate_tasks: the job's active tasks
    in claim order, FOR UPDATE SKIP LOCKED on PostgreSQL), rolled back; with `explain`, the
    plan PostgreSQL ran it by (EXPLAIN (ANALYZE, BUFFERS)) instead."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from tasks.operations.attempt_store import candidate_tasks

    with transaction.atomic():
        if not explain:
            assert len(candidate_tasks(job, after, CLAIM_PAGE)) == CLAIM_PAGE
            transaction.set_rollback(True)
            return ""
        with CaptureQueriesContext(connection) as seen:
            candidate_tasks(job, after, CLAIM_PAGE)
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + seen.captured_queries[-1]["sql"])
            plan = "\n".join(row[0] for row in cur.fetchall())
        transaction.set_rollback(True)
        return plan


# An agent's first claim page holds its free slots: 4 is two nodes of two.
CLAIM_PAGE = 4


def measure_claim(repeat: int, explain: bool) -> None:
    """The claim's page at the head of the job's active tasks and after its middle one (a
    later page of a pass, or a pass resumed there: claim_scan), big job vs small. Every
    task of a job here shares one creation time (as a bulk add can make them): claim
    order is then the pk's alone."""
    from django.db import connection

    from tasks.models import Job, Task

    print(f"\nClaim page ({CLAIM_PAGE} active tasks in claim order)  ({connection.vendor})")
    figures = {}
    for label in ("small", "big"):
        job = Job.objects.get(id_key=label)
        active = Task.objects.filter(job=job, state="active").order_by("creation_time", "pk")
        middle = active.values_list("creation_time", "pk")[active.count() // 2]
        for where, after in (("first", None), ("middle", middle)):
            claim_page(job, after)  # warm up, and the statement prepared on PostgreSQL
            claim_page(job, after)
            figures[(where, label)] = median_ms(
                timed(lambda a=(job, after): claim_page(*a), repeat)
            )
            if explain and connection.vendor == "postgresql":
                print(f"  plan, {label} job, {where} page:")
                print("    " + claim_page(job, after, explain=True).replace("\n", "\n    "))
    print(f"  {describe_run()}")
    print(f"  {'page':<10}{'small job':>15}{'big job':>17}{'ratio':>10}")
    for where in ("first", "middle"):
        small, big = figures[(where, "small")], figures[(where, "big")]
        print(f"  {where:<10}{small:>12.2f} ms{big:>14.2f} ms{big / small:>10.2f}")


PAGE = 1000  # the pages listed: List Tasks' largest


def middle_token(client, job_id: str, state: str) -> str:
    """The $skiptoken of the page after the job's middle task of that state, from a page
    of one task there (the cursor is the pager's own: made by the server, not here)."""
    from urllib.parse import parse_qs, urlsplit

    from tasks.models import Task

    keys = Task.objects.filter(job__id_key=job_id, state=state).order_by("id_key")
    count = keys.count()
    # The middle, or earlier in a small job: a full page must follow it.
    middle = keys.values_list("id_key", flat=True)[min(count // 2, count - PAGE - 1)]
    params = {
        "$filter": f"state eq '{state}' and id ge '{middle}'",
        "maxresults": "1",
    }
    r = client.get(f"/jobs/{job_id}/tasks", params=params)
    link = json.loads(r.content)["odata.nextLink"]
    return parse_qs(urlsplit(link).query)["$skiptoken"][0]


if __name__ == "__main__":
    main()
