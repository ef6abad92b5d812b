"""The agents' hot path alone, in one process and without task processes: the cost of
one report-and-claim pass per task (what tasks.node.agent does between a task's exit and
the next task's start), and the statements a pass sends, on the database DATABASE_URL
names (default: SQLite). Each round: --tasks tasks added through the rules layer, then
passes of `finish the attempts of the last claim + claim --slots more` until the job is
done; the figure is milliseconds per task, beside a same-run baseline: one
`SELECT 1` round trip through Django's cursor (the cost of talking to the database at
all), so that the ratio `ms per task / round trip` is comparable across loads. It prints
the CPU a task costs too: this process's (the client's) and, on PostgreSQL, its session's
server process's, figures a busy machine changes less than the wall clock.

It isolates what issue 13 changes (statements, round trips, locks) from what it does
not (spawning, the web tier), and so reads the same on a busy machine within ~20 %.

Issue 14's "within noise" on PostgreSQL (2026-12-02): the wall-clock figure swung 3-29 ms a
task between runs at load 4-15 (1656f3f 20.9, 14.4, 3.1 ms; main 28.9, 5.3, 4.4 ms,
interleaved), so it was measured as the process's own CPU time instead (time.perf_counter
replaced by time.process_time for the run; the statements are the same 11 a pass): 1656f3f
1.31, 1.32, 1.48 ms a task, main c452a16 1.37, 1.35, 1.65 ms, interleaved: main spends
3-11 % more client CPU (0.03-0.17 ms a task) in the refactored code, the rest of last
session's 2.81 -> 3.15 ms was the machine.

Usage: DATABASE_URL=... .venv/bin/python benchmarks/bench_hot_path.py [--tasks 2000] [--slots 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import describe_run, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django("hot-path")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tasks.models import Account
    from tasks.operations import attempts
    from tasks.operations import nodes as node_ops
    from tasks.operations.jobs import add_job
    from tasks.operations.pools import add_pool
    from tasks.operations.tasks import add_task_collection

    account = Account.objects.create(
        name="bench", primary_key="YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
    )
    pool = add_pool(account, spec={"id": "hot", "vmSize": "local"})
    node = node_ops.register_node(
        pool,
        node_id="n1",
        slots=args.slots,
        ip_address="10.0.0.1",
        root_dir="/tmp/batchsite-bench-hot/n1",
    )
    pass_ = getattr(attempts, "agent_pass", None)

    def one_pass(reports, limit):
        from django.db import transaction

        with pass_() if pass_ else transaction.atomic():
            attempts.finish_attempts(reports)
            return attempts.claim_work(node, limit=limit)

    def round_trip() -> float:
        samples = []
        with connection.cursor() as cursor:
            for _ in range(200):
                t = time.perf_counter()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    def backend_cpu() -> float:
        """CPU seconds of this session's server process so far (PostgreSQL; 0 on SQLite)."""
        if connection.vendor != "postgresql":
            return 0.0
        import psutil

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            times = psutil.Process(cursor.fetchone()[0]).cpu_times()
        return times.user + times.system

    per_task, trips, statements, cpus = [], [], 0, []
    for r in range(args.rounds):
        job = add_job(account, spec={"id": f"hot{r}", "poolInfo": {"poolId": "hot"}})
        for start in range(0, args.tasks, 100):
            specs = [
                {"id": f"t{i}", "commandLine": "/bin/true"}
                for i in range(start, min(start + 100, args.tasks))
            ]
            add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
        trips.append(round_trip())
        running = one_pass([], args.slots)
        done = 0
        t = time.perf_counter()
        cpu_before = (time.process_time(), backend_cpu())
        while running:
            reports = [attempts.AttemptReport(a.pk, exit_code=0) for a in running]
            if r == 0 and done == args.slots * 10:
                with CaptureQueriesContext(connection) as queries:
                    running = one_pass(reports, args.slots)
                statements = len(queries)
            else:
                running = one_pass(reports, args.slots)
            done += len(reports)
        per_task.append((time.perf_counter() - t) / done)
        server = backend_cpu() - cpu_before[1]
        cpus.append(((time.process_time() - cpu_before[0]) / done, server / done))
        job.refresh_from_db()
        assert job.succeeded_count == args.tasks, job.succeeded_count

    ms = statistics.median(per_task) * 1000
    trip = statistics.median(trips) * 1000
    print(
        f"hot path: report {args.slots} + claim {args.slots} per pass, {args.tasks:,} tasks x {args.rounds} rounds"
    )
    print(f"  {describe_run()}")
    print(
        f"  per task: {ms:.3f} ms (rounds {', '.join(f'{x * 1000:.3f}' for x in per_task)}); "
        f"statements per pass: {statements}"
    )
    client = statistics.median(c for c, _ in cpus) * 1000
    server = statistics.median(s for _, s in cpus) * 1000
    print(f"  CPU per task (median round): client {client:.3f} ms, server {server:.3f} ms")
    print(
        f"  one SELECT 1 round trip (same run): {trip:.3f} ms; ratio per task / round trip: {ms / trip:.1f}"
    )


if __name__ == "__main__":
    main()
