"""Pool allocation on the `local` provider: a pool created with N = 4 dedicated nodes until
its 4 nodes are idle and the pool steady (issue 9; target < 2 s), and a resize down to 0
with nodeDeallocationOption taskcompletion until the pool is steady with no node, both
with `manage.py reconcile` running as `make run` will run it (its default interval,
BATCHSITE_RECONCILE_SECONDS). Beside each, in the same run, the baseline: starting N
`runnode` agents by hand until they are idle, and stopping them with SIGTERM until they
have exited.

Rounds alternate baseline and pool; the median of each is the figure, and the ratio is
pool / baseline (1.0: the pool costs nothing over starting the agents yourself; the
difference is the reconciler's pass interval and its bookkeeping).

Figures (2026-12-01, 2 CPUs shared by eight engineers' test runs, load average 10-15,
medians of 5 rounds): pool created -> 4 nodes idle 7.9 s beside 7.3 s by hand (ratio 1.08);
after agents stopped importing the OpenAPI machinery (a third of their start), 8.8 s beside
9.0 s (ratio 0.99). Resize to 0 with taskcompletion 0.6-0.8 s beside 2.3-2.7 s for SIGTERM
by hand (ratio 0.22-0.34: a leaving agent has nothing to requeue and no grace to wait);
with each node busy with a 1 s task, 1.4 s (ratio 0.70). The < 2 s target is out of reach
on this machine for any way of starting 4 Django processes (the baseline alone takes 6-10 s
here); what the pool adds on top of them is nothing measurable.

Usage: .venv/bin/python benchmarks/bench_pool_allocation.py [--nodes 4] [--rounds 3] [--busy]
  --busy: each node runs a 1 s task when the resize down starts (taskcompletion waits for it)
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    procs = [subprocess.Popen([sys.executable, "manage.py", "runnode", "--account", account.name, "--pool",
                               pool.pool_id, "--slots", "1", "--node-id", f"hand-{round_no}-{i}"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True) for i in range(nodes)]
    wait(lambda: ComputeNode.objects.filter(pool=pool, state="idle").count() == nodes, what="hand agents idle")
    up = time.perf_counter() - started
    started = time.perf_counter()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(60)
    down = time.perf_counter() - started
    return up, down


def as_a_pool(account, nodes: int, round_no: int, busy: bool) -> tuple[float, float]:
    """Add Pool with N nodes until N are idle and the pool steady; Resize to 0 with
    taskcompletion until steady with none."""
    from tasks.models import ComputeNode, Pool, Task
    from tasks.operations.jobs import add_job
    from tasks.operations.pools import add_pool, resize_pool
    from tasks.operations.tasks import add_task
    from tasks.providers.local import LocalProvider

    started = time.perf_counter()
    pool = add_pool(account, spec={"id": f"pool{round_no}", "vmSize": "standard_d2s_v3",
                                   "targetDedicatedNodes": nodes})

    def steady_with(count: int):
        return lambda: (Pool.objects.get(pk=pool.pk).allocation_state == "steady"
                        and ComputeNode.objects.filter(pool=pool).count() == count
                        and ComputeNode.objects.filter(pool=pool, state="idle").count() == count)

    wait(steady_with(nodes), what="the pool's nodes idle")
    up = time.perf_counter() - started
    if busy:
        job = add_job(account, spec={"id": f"busy{round_no}", "poolInfo": {"poolId": pool.pool_id}})
        for i in range(nodes):
            add_task(job, spec={"id": f"t{i}", "commandLine": "/bin/sleep 1"})
        wait(lambda: Task.objects.filter(job=job, state="running").count() == nodes, what="the tasks running")
    started = time.perf_counter()
    resize_pool(pool, target_dedicated=0, node_deallocation_option="taskcompletion")
    wait(lambda: Pool.objects.get(pk=pool.pk).allocation_state == "steady"
         and not ComputeNode.objects.filter(pool=pool).exists(), what="the pool empty")
    wait(lambda: not [r for r in LocalProvider().running() if r.pool_id == pool.pool_id], what="agents exited")
    down = time.perf_counter() - started
    if busy:
        assert Task.objects.filter(job__job_id=f"busy{round_no}", result="success").count() == nodes
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", action="store_true")
    args = parser.parse_args()
    data = setup_django("pool-allocation")

    from django.conf import settings

    from tasks.models import Account

    account = Account.objects.create(name="bench", primary_key="YmVuY2g=")
    reconciler = subprocess.Popen([sys.executable, "manage.py", "reconcile"], cwd=ROOT, env=dict(os.environ),
                                  stdout=subprocess.DEVNULL)
    hand, pool = [], []
    try:
        for r in range(args.rounds):
            hand.append(by_hand(account, args.nodes, r))
            pool.append(as_a_pool(account, args.nodes, r, args.busy))
    finally:
        reconciler.send_signal(signal.SIGTERM)
        reconciler.wait(60)
        shutil.rmtree(data, ignore_errors=True)

    def med(rows, i):
        return statistics.median(row[i] for row in rows)

    print(f"{args.nodes} local nodes, {args.rounds} rounds, {os.cpu_count()} CPUs, reconciler interval "
          f"{settings.BATCHSITE_RECONCILE_SECONDS:g} s{', each node busy with a 1 s task' if args.busy else ''}")
    for i, (h, p) in enumerate(zip(hand, pool, strict=True), start=1):
        print(f"  round {i}: by hand up {h[0]:.2f} s, down {h[1]:.2f} s; pool up {p[0]:.2f} s, "
              f"down (taskcompletion) {p[1]:.2f} s")
    print(f"  pool created -> {args.nodes} nodes idle: {med(pool, 0):.2f} s (median)   target: < 2 s;"
          f" by hand {med(hand, 0):.2f} s; ratio {med(pool, 0) / med(hand, 0):.2f}")
    print(f"  resize to 0 (taskcompletion) -> steady, agents gone: {med(pool, 1):.2f} s (median);"
          f" SIGTERM by hand {med(hand, 1):.2f} s; ratio {med(pool, 1) / med(hand, 1):.2f}")


if __name__ == "__main__":
    main()
