"""A running batchsite for the execution benchmarks: gunicorn, N `runnode` agents of the
pool `local` and the sweep, on the benchmark's throw-away data dir, as `make run` starts them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, free_port, wait_port

KEY = "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktMDA="
# The running service's processes (gunicorn's master, the agents, the sweep), for cpu_used().
_running: dict[str, list[int]] = {"web": [], "agents": [], "sweep": []}


@contextlib.contextmanager
def service(data: Path, *, nodes: int, slots: int, workers: int = 2, threads: int = 4):
    """Yield (client, account, pool) with the server and agents running."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from tasks.models import Account, ComputeNode
    from tasks.operations.pools import ensure_pool

    account, _ = Account.objects.get_or_create(name="bench", defaults={"primary_key": KEY})
    pool = ensure_pool(account, "local", slots_per_node=slots)
    env = dict(os.environ, BATCHSITE_DATA_DIR=str(data))
    port = free_port()
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "batchsite.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
    ]
    profile = os.environ.get("AGENT_PROFILE")
    for i in range(nodes):
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    # AGENT_PROFILE=path: each agent's CPU profile in path.0, path.1, ...
                    *(
                        [str(ROOT / "benchmarks" / "_cpu_profile.py"), f"{profile}.{i}"]
                        if profile
                        else []
                    ),
                    "manage.py",
                    "runnode",
                    "--pool",
                    "local",
                    "--slots",
                    str(slots),
                    "--node-id",
                    f"local-{i + 1}",
                    "--account",
                    "bench",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
    _running["web"], _running["agents"] = [children[0].pid], [c.pid for c in children[1:]]
    # The sweeps, as `make run` (serve) runs them beside the web tier and the agents.
    children.append(
        subprocess.Popen(
            [sys.executable, "manage.py", "sweep"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
    )
    _running["sweep"] = [children[-1].pid]
    try:
        wait_port(port)
        deadline = time.monotonic() + 30
        while ComputeNode.objects.filter(pool=pool, state="idle").count() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the nodes did not register")
            time.sleep(0.1)
        client = BatchClient(
            endpoint=f"http://127.0.0.1:{port}", credential=AzureNamedKeyCredential("bench", KEY)
        )
        yield client, account, pool
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def cpu_used() -> dict[str, float]:
    """CPU seconds used so far by the service's web tier (gunicorn and its workers), its
    agents (with their helpers, not the task processes they reaped), its sweeps and, on PostgreSQL,
    the server processes of the database's other sessions: a figure the machine's load
    hardly changes, where latency is mostly waiting for a CPU. A session that ended since
    an earlier call takes its time with it."""
    import psutil
    from django.db import connection

    def tree(pid: int) -> float:
        try:
            root = psutil.Process(pid)
            total = 0.0
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
            return total
        except psutil.Error:
            return 0.0

    used = {
        "web": sum(tree(pid) for pid in _running["web"]),
        "agents": sum(tree(pid) for pid in _running["agents"]),
        "sweep": sum(tree(pid) for pid in _running["sweep"]),
        "database": 0.0,
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            for (pid,) in cursor.fetchall():
                with contextlib.suppress(psutil.Error):
                    times = psutil.Process(pid).cpu_times()
                    used["database"] += times.user + times.system
    return used


def agent_children_cpu() -> float:
    """CPU seconds of the processes the agents started and reaped (their tasks)."""
    import psutil

    total = 0.0
    for pid in _running["agents"]:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.children_user + times.children_system
    return total


def poll_seconds() -> float:
    """How often the agents poll (the latency benchmarks print it beside their figures)."""
    from django.conf import settings

    return settings.BATCHSITE_NODE_POLL_SECONDS


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
