"""Pool allocation on the `local` provider: a pool created with N = 4 dedicated nodes until
its 4 nodes are idle and the pool steady (issue 9; target < 2 s), and a resize down to 0
with nodeDeallocationOption taskcompletion, asked while every node runs a 1 s task, until
the pool is steady with no node and no agent left. Both with `manage.py reconcile` running
as `make run` runs it (its default interval, BATCHSITE_RECONCILE_SECONDS). Beside each, in
the same run, the baseline by hand: N `runnode` agents started until they are idle; for
the resize, the tasks' own remaining run (resize asked -> last task ended) plus N idle
agents stopped with SIGTERM until they have exited.

Rounds alternate baseline and pool; the median of each is the figure, and the ratio is
pool / baseline (1.0: the pool costs nothing over doing it by hand; the difference is the
reconciler's pass interval and its bookkeeping).

Figures: see the README's Benchmarks section.

Usage: .venv/bin/python benchmarks/bench_pool_allocation.py [--nodes 4] [--rounds 5] [--idle] [--quick]
  --idle: no task runs when the resize down starts
  --quick: one round
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

from _common import ROOT, setup_django


def wait(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def by_hand(account, nodes: int, round_no: int) -> tuple[float, float]:
    """The baseline: N agents started by hand until idle; stopped until they exited."""
    from tasks.models import ComputeNode
    from tasks.operations.pools import add_pool

    pool = add_pool(account, spec={"id": f"hand{round_no}", "vmSize": "local"})
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runnode",
                "--account",
                account.name,
                "--pool",
                pool.pool_id,
                "--slots",
                "1",
                "--node-id",
                f"hand-{round_no}-{i}",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(nodes)
    ]
    wait(
        lambda: ComputeNode.objects.filter(pool=pool, state="idle").count() == nodes,
        what="hand agents idle",
    )
    up = time.perf_counter() - started
    started = time.perf_counter()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(60)
    down = time.perf_counter() - started
    return up, down


def as_a_pool(account, nodes: int, round_no: int, busy: bool) -> tuple[float, float, float]:
    """Add Pool with N nodes until N are idle and the pool steady; Resize to 0 with
    taskcompletion until steady with none and the agents gone; and how long the tasks
    still ran after the resize was asked (0 without tasks)."""
    from tasks.models import ComputeNode, Pool, Task
    from tasks.operations.jobs import add_job
    from tasks.operations.pools import add_pool, resize_pool
    from tasks.operations.tasks import add_task
    from tasks.providers.local import LocalProvider

    started = time.perf_counter()
    pool = add_pool(
        account,
        spec={"id": f"pool{round_no}", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": nodes},
    )

    def steady_with(count: int):
        return lambda: (
            Pool.objects.get(pk=pool.pk).allocation_state == "steady"
            and ComputeNode.objects.filter(pool=pool).count() == count
            and ComputeNode.objects.filter(pool=pool, state="idle").count() == count
        )

    wait(steady_with(nodes), what="the pool's nodes idle")
    up = time.perf_counter() - started
    if busy:
        job = add_job(account, spec={"id": f"busy{round_no}", "poolInfo": {"poolId": pool.pool_id}})
        for i in range(nodes):
            add_task(job, spec={"id": f"t{i}", "commandLine": "/bin/sleep 1"})
        wait(
            lambda: Task.objects.filter(job=job, state="running").count() == nodes,
            what="the tasks running",
        )
    started, asked = time.perf_counter(), time.time()
    resize_pool(pool, target_dedicated=0, node_deallocation_option="taskcompletion")
    wait(
        lambda: (
            Pool.objects.get(pk=pool.pk).allocation_state == "steady"
            and not ComputeNode.objects.filter(pool=pool).exists()
        ),
        what="the pool empty",
    )
    wait(
        lambda: not [r for r in LocalProvider().running() if r.pool_id == pool.pool_id],
        what="agents exited",
    )
    down = time.perf_counter() - started
    remaining = 0.0
    if busy:
        done = Task.objects.filter(job__job_id=f"busy{round_no}", result="success")
        assert done.count() == nodes
        remaining = max(0.0, max(t.end_time.timestamp() for t in done) - asked)
    return up, down, remaining


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--idle", action="store_true", help="no task runs when the resize down starts"
    )
    parser.add_argument("--quick", action="store_true", help="one round")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    busy = not args.idle
    setup_django("pool-allocation")

    from django.conf import settings

    from tasks.models import Account

    account = Account.objects.create(name="bench", primary_key="YmVuY2g=")
    reconciler = subprocess.Popen(
        [sys.executable, "manage.py", "reconcile"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
    )
    hand, pool = [], []
    try:
        for r in range(args.rounds):
            hand.append(by_hand(account, args.nodes, r))
            pool.append(as_a_pool(account, args.nodes, r, busy))
    finally:
        reconciler.send_signal(signal.SIGTERM)
        reconciler.wait(60)

    def med(rows, i):
        return statistics.median(row[i] for row in rows)

    # The resize's baseline: wait for the tasks by hand, then stop the idle agents.
    down_base = [p[2] + h[1] for h, p in zip(hand, pool, strict=True)]
    print(
        f"{args.nodes} local nodes, {args.rounds} rounds, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"reconciler interval {settings.BATCHSITE_RECONCILE_SECONDS:g} s"
        f"{', each node busy with a 1 s task when the resize starts' if busy else ''}"
    )
    for i, (h, p) in enumerate(zip(hand, pool, strict=True), start=1):
        print(
            f"  round {i}: by hand up {h[0]:.2f} s, SIGTERM {h[1]:.2f} s; pool up {p[0]:.2f} s, "
            f"resize to 0 {p[1]:.2f} s (tasks still ran {p[2]:.2f} s of it)"
        )
    print(
        f"  pool created -> {args.nodes} nodes idle: {med(pool, 0):.2f} s (median)   target: < 2 s;"
        f" by hand {med(hand, 0):.2f} s; ratio {med(pool, 0) / med(hand, 0):.2f}"
    )
    print(
        f"  resize to 0 (taskcompletion{', tasks running' if busy else ''}) -> steady, agents gone: "
        f"{med(pool, 1):.2f} s (median); by hand (the tasks' remaining run {med(pool, 2):.2f} s, then SIGTERM "
        f"{med(hand, 1):.2f} s) {statistics.median(down_base):.2f} s; ratio "
        f"{med(pool, 1) / statistics.median(down_base):.2f}"
    )


if __name__ == "__main__":
    main()
