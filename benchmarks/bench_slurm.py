"""The slurm node provider: how fast its nodes come up, and whether tasks run as fast on
them as on local agents (issue 9; targets: 3 slurm nodes idle < 5 s, throughput ratio >= 0.8).

1. Node start: 3 nodes from provider.start (one sbatch each) to 3 idle nodes in the
   database, beside the same-run time of starting 3 local `runnode` processes directly.
   (Once the reconciler lands, "from Add Pool" is the figure; the provider's part is this.)
2. End-to-end throughput: --tasks `/bin/true` tasks added through the 15.x SDK to a
   gunicorn-served batchsite and run by 3 nodes x --slots slots, from the first add to the
   last completed: on 3 slurm nodes, beside the same on 3 local agents. Rounds alternate
   local, slurm, local, ...; each slurm round's ratio is its rate over the mean of the
   local rounds around it, and the median is the figure. The agents are the same program:
   the ratio says what running them as Slurm jobs costs (cgroup tracking, accounting).

Needs a Slurm controller with 3 free nodes (.ci/slurm-up). SQLite unless DATABASE_URL is
set (the agents run on this host either way).

Usage: .venv/bin/python benchmarks/bench_slurm.py [--tasks 2000] [--rounds 3] [--slots 2] [--starts 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

from _common import ROOT, free_port, setup_django, wait_port

KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
NODES = 3


def wait_idle(pool, node_ids: list[str], timeout: float = 60) -> None:
    from tasks.models import ComputeNode

    deadline = time.monotonic() + timeout
    while ComputeNode.objects.filter(pool=pool, node_id__in=node_ids, state="idle").count() < len(node_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nodes {node_ids} did not become idle")
        time.sleep(0.01)


def wait_gone(provider, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while provider.running():
        if time.monotonic() > deadline:
            raise RuntimeError("the slurm nodes did not stop")
        time.sleep(0.1)


@contextlib.contextmanager
def local_nodes(pool, node_ids: list[str], slots: int):
    """3 `runnode` processes on this machine, as the local provider starts them."""
    children = [subprocess.Popen(
        [sys.executable, "manage.py", "runnode", "--pool", pool.pool_id, "--slots", str(slots), "--node-id",
         node_id, "--account", pool.account.name], cwd=ROOT, stdout=subprocess.DEVNULL) for node_id in node_ids]
    try:
        yield
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(30)


@contextlib.contextmanager
def slurm_nodes(provider, pool, node_ids: list[str], slots: int):
    from tasks.providers.base import NodeLaunch

    handles = [provider.start(NodeLaunch(account=pool.account.name, pool_id=pool.pool_id, node_id=node_id,
                                         slots=slots)) for node_id in node_ids]
    try:
        yield
    finally:
        for handle in handles:
            provider.stop(handle, graceful=True)
        wait_gone(provider)


def time_to_idle(nodes, pool, node_ids: list[str]) -> float:
    started = time.perf_counter()
    with nodes():
        wait_idle(pool, node_ids)
        return time.perf_counter() - started


def throughput(client, job_id: str, count: int) -> float:
    from azure.batch import models as m

    from tasks.models import Job

    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="bench")))
    tasks = [m.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="/bin/true") for i in range(count)]
    started = time.perf_counter()
    client.create_tasks(job_id, tasks, max_concurrency=8)
    while Job.objects.get(job_id=job_id).completed_count < count:
        time.sleep(0.02)
    rate = count / (time.perf_counter() - started)
    job = Job.objects.get(job_id=job_id)
    assert job.succeeded_count == count, f"only {job.succeeded_count} of {count} succeeded"
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="slurm rounds (local rounds: one more)")
    parser.add_argument("--slots", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--starts", type=int, default=3, help="node-start samples per provider")
    args = parser.parse_args()
    data = setup_django("slurm")

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from tasks.models import Account
    from tasks.operations.pools import ensure_pool
    from tasks.providers.slurm import SlurmProvider

    account, _ = Account.objects.get_or_create(name="bench", defaults={"primary_key": KEY})
    pool = ensure_pool(account, "bench", slots_per_node=args.slots)
    provider = SlurmProvider()
    if provider.running():
        raise SystemExit("this benchmark's Slurm jobs are already running")

    # 1. Node start, alternating local and slurm.
    starts = {"local": [], "slurm": []}
    for i in range(args.starts):
        for kind in ("local", "slurm"):
            ids = [f"{kind}-{i}-{n}" for n in range(NODES)]
            nodes = (lambda ids=ids: local_nodes(pool, ids, args.slots)) if kind == "local" else \
                (lambda ids=ids: slurm_nodes(provider, pool, ids, args.slots))
            starts[kind].append(time_to_idle(nodes, pool, ids))

    # 2. Throughput, local and slurm rounds alternating, one service for all of them.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "batchsite.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--log-level", "warning"], cwd=ROOT)
    rates = {"local": [], "slurm": []}
    try:
        wait_port(port)
        client = BatchClient(endpoint=f"http://127.0.0.1:{port}", credential=AzureNamedKeyCredential("bench", KEY))
        kinds = ["local", "slurm"] * args.rounds + ["local"]
        for r, kind in enumerate(kinds):
            ids = [f"tp-{kind}-{r}-{n}" for n in range(NODES)]
            nodes = local_nodes(pool, ids, args.slots) if kind == "local" else slurm_nodes(provider, pool, ids,
                                                                                           args.slots)
            with nodes:
                wait_idle(pool, ids)
                rates[kind].append(throughput(client, f"tp{r}", args.tasks))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    if not os.environ.get("BENCH_DATA_DIR"):
        shutil.rmtree(data, ignore_errors=True)

    print(f"slurm node provider, {NODES} nodes x {args.slots} slots ({os.cpu_count()} CPUs), "
          f"Slurm nodes on this host")
    print(f"  node start, {args.starts} samples each: 3 nodes from start to idle")
    print(f"    slurm (provider.start -> sbatch -> agent idle): median {statistics.median(starts['slurm']):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in starts['slurm'])})   target: < 5 s")
    print(f"    local (runnode processes started directly):     median {statistics.median(starts['local']):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in starts['local'])})")
    print(f"    ratio slurm / local: {statistics.median(starts['slurm']) / statistics.median(starts['local']):.2f}")
    ratios = [rates["slurm"][i] / ((rates["local"][i] + rates["local"][i + 1]) / 2) for i in range(args.rounds)]
    print(f"  throughput, {args.tasks:,} x /bin/true per round, add -> completed:")
    for i, ratio in enumerate(ratios):
        print(f"    round {i + 1}: slurm {rates['slurm'][i]:,.0f} tasks/s beside local {rates['local'][i]:,.0f} / "
              f"{rates['local'][i + 1]:,.0f} tasks/s: ratio {ratio:.2f}")
    print(f"  ratio slurm / local, median of {args.rounds} rounds: {statistics.median(ratios):.2f}   target: >= 0.8")


if __name__ == "__main__":
    main()
