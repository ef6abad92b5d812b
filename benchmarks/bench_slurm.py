"""The slurm node provider beside the local one (issue 9; targets: a pool of 3 slurm nodes
idle < 5 s after it is created, task throughput on it >= 0.8 of the same on 3 local nodes).

Each round adds a pool of 3 dedicated nodes x --slots slots, with `manage.py reconcile`
running as `make run` runs it, and measures:
  up        Add Pool -> 3 nodes idle and the pool steady;
  tasks     --tasks `/bin/true` tasks added through the 15.x SDK to a gunicorn-served
            batchsite, from the first add to the last completed (tasks/s);
  down      Resize to 0 with taskcompletion, asked while each slot runs a 1 s task ->
            steady, no node, no agent left.
Rounds alternate local, slurm, local, ... (one more local round than slurm rounds); each
slurm round's ratio is its figure over the mean of the local rounds around it, and the
median is the figure. The agents are the same program started two ways (a process in its
own session, or a Slurm job in its own session and cgroup), so the ratios say what Slurm
costs: sbatch and Slurm's scheduling for `up`, cgroup tracking and accounting for `tasks`.

Beside them, Slurm's own share of a node's start: sbatch of a job script like a node's
(the same address lookup, then a `date` instead of the agent) until the script has run,
against the same script started directly.

Needs a Slurm controller with 3 free nodes (.ci/slurm-up) on this host. SQLite unless
DATABASE_URL names a PostgreSQL database (then a fresh test_<it> is used, as by the
tests: benchmarks/_common.py). Figures: see the README's Benchmarks section.

Usage: .venv/bin/python benchmarks/bench_slurm.py [--tasks 2000] [--rounds 3] [--slots N] [--quick]
  --quick: one slurm round between two local ones, 500 tasks each
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from _common import ROOT, free_port, setup_django, wait_port

KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
NODES = 3
SIZES = {"slurm_3": {"provider": "slurm"}, "*": {"provider": "local"}}


def wait(predicate, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def a_round(
    client, account, kind: str, round_no: int, tasks: int, slots: int
) -> tuple[float, float, float]:
    """(up seconds, tasks/s, down seconds) of one pool on the `kind` provider."""
    from azure.batch import models as m

    from tasks.models import ComputeNode, Job, Pool, Task
    from tasks.operations.pools import add_pool, resize_pool
    from tasks.providers.registry import get_provider

    started = time.perf_counter()
    pool = add_pool(
        account,
        spec={
            "id": f"{kind}{round_no}",
            "vmSize": "slurm_3" if kind == "slurm" else "d2",
            "targetDedicatedNodes": NODES,
            "taskSlotsPerNode": slots,
        },
    )
    assert pool.provider == kind

    def steady_with(count: int):
        return lambda: (
            Pool.objects.get(pk=pool.pk).allocation_state == "steady"
            and ComputeNode.objects.filter(pool=pool).count() == count
            and ComputeNode.objects.filter(pool=pool, state="idle").count() == count
        )

    wait(steady_with(NODES), what=f"the {kind} pool's nodes idle")
    up = time.perf_counter() - started

    job_id = f"tp{round_no}{kind}"
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=pool.pool_id))
    )
    specs = [
        m.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="/bin/true") for i in range(tasks)
    ]
    started = time.perf_counter()
    client.create_tasks(job_id, specs, max_concurrency=8)
    wait(
        lambda: Job.objects.get(job_id=job_id).completed_count == tasks,
        timeout=600,
        what="the tasks",
    )
    rate = tasks / (time.perf_counter() - started)
    assert Job.objects.get(job_id=job_id).succeeded_count == tasks

    busy = f"busy{round_no}{kind}"
    client.create_job(
        m.BatchJobCreateOptions(id=busy, pool_info=m.BatchPoolInfo(pool_id=pool.pool_id))
    )
    client.create_tasks(
        busy,
        [
            m.BatchTaskCreateOptions(id=f"s{i}", command_line="/bin/sleep 1")
            for i in range(NODES * slots)
        ],
    )
    wait(
        lambda: Task.objects.filter(job__job_id=busy, state="running").count() == NODES * slots,
        what="a task in each slot",
    )
    started = time.perf_counter()
    resize_pool(
        Pool.objects.get(pk=pool.pk), target_dedicated=0, node_deallocation_option="taskcompletion"
    )
    wait(steady_with(0), what=f"the {kind} pool empty")
    wait(
        lambda: not [r for r in get_provider(kind).running() if r.pool_id == pool.pool_id],
        what="agents gone",
    )
    down = time.perf_counter() - started
    assert Task.objects.filter(job__job_id=busy, result="success").count() == NODES * slots
    return up, rate, down


def slurm_share(samples: int) -> tuple[float, float]:
    """Median seconds from sbatch to a node-like job script having run (the node's address
    lookup, then `date` where the agent would start), and from starting the same script
    directly to it having run."""
    from tasks.providers.slurm import NODE_ADDRESS

    script = f"{NODE_ADDRESS}; date +%s.%N"
    slurm, direct = [], []
    for i in range(samples):
        started = time.time()
        out = subprocess.run(
            ["/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": os.environ["PATH"], "SLURMD_NODENAME": "n1"},
        ).stdout
        direct.append(float(out.split()[-1]) - started)
        path = f"/tmp/bench-slurm-share-{os.getpid()}-{i}"
        started = time.time()
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--exclusive",
                "--no-requeue",
                f"--output={path}",
                "--job-name=bench-slurm-share",
                f"--wrap={script}",
            ],
            capture_output=True,
            check=True,
            env={"PATH": os.environ["PATH"]},
        )
        wait(
            lambda path=path: os.path.exists(path) and open(path).read().strip(),
            what="the job script",
        )
        slurm.append(float(open(path).read().split()[-1]) - started)
        os.unlink(path)
    return statistics.median(slurm), statistics.median(direct)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="slurm rounds (local rounds: one more)"
    )
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="one slurm round, 500 tasks")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.tasks = 1, 500
    os.environ["BATCHSITE_VM_SIZES"] = json.dumps(SIZES)
    setup_django("slurm")  # its data dir is removed at exit (BENCH_DATA_DIR: kept)

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from django.conf import settings
    from django.db import connection

    from tasks.models import Account
    from tasks.providers.slurm import SlurmProvider

    if SlurmProvider().running():
        raise SystemExit("this benchmark's Slurm jobs are already running")
    share = slurm_share(5)
    account = Account.objects.create(name="bench", primary_key=KEY)
    port = free_port()
    children = [
        subprocess.Popen(
            [sys.executable, "manage.py", "reconcile"], cwd=ROOT, stdout=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "batchsite.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
        ),
    ]
    rounds = {"local": [], "slurm": []}
    try:
        wait_port(port)
        client = BatchClient(
            endpoint=f"http://127.0.0.1:{port}", credential=AzureNamedKeyCredential("bench", KEY)
        )
        for r, kind in enumerate(["local", "slurm"] * args.rounds + ["local"]):
            rounds[kind].append(a_round(client, account, kind, r, args.tasks, args.slots))
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(60)

    local, slurm = rounds["local"], rounds["slurm"]

    def ratios(i: int) -> list[float]:
        return [slurm[r][i] / ((local[r][i] + local[r + 1][i]) / 2) for r in range(args.rounds)]

    print(
        f"pools of {NODES} nodes x {args.slots} slots on local and on slurm (Slurm's nodes on this host, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {connection.vendor}), {args.tasks:,} x /bin/true per "
        f"round, reconciler interval "
        f"{settings.BATCHSITE_RECONCILE_SECONDS:g} s"
    )
    for r in range(args.rounds):
        print(
            f"  round {r + 1}: slurm up {slurm[r][0]:.2f} s, {slurm[r][1]:,.0f} tasks/s, down {slurm[r][2]:.2f} s;"
            f" local around it up {local[r][0]:.2f} / {local[r + 1][0]:.2f} s, {local[r][1]:,.0f} / "
            f"{local[r + 1][1]:,.0f} tasks/s, down {local[r][2]:.2f} / {local[r + 1][2]:.2f} s"
        )
    print(
        f"  Add Pool -> {NODES} slurm nodes idle: {statistics.median(s[0] for s in slurm):.2f} s (median)"
        f"   target: < 5 s; local {statistics.median(s[0] for s in local):.2f} s; ratio slurm / local "
        f"{statistics.median(ratios(0)):.2f}"
    )
    print(
        f"    Slurm's share: sbatch -> a node's job script run {share[0]:.2f} s (median of 5), "
        f"the same script run directly {share[1]:.2f} s"
    )
    print(
        f"  throughput on {NODES} slurm nodes / on {NODES} local nodes: {statistics.median(ratios(1)):.2f} "
        f"(median of {args.rounds} rounds: {', '.join(f'{x:.2f}' for x in ratios(1))})   target: >= 0.8"
    )
    print(
        f"  resize to 0 (taskcompletion, a 1 s task in each slot) -> steady, agents gone: slurm {statistics.median(s[2] for s in slurm):.2f}"
        f" s, local {statistics.median(s[2] for s in local):.2f} s; ratio {statistics.median(ratios(2)):.2f}"
    )


if __name__ == "__main__":
    main()
