"""A running batchsite for the execution benchmarks: gunicorn plus N `runnode` agents of
the pool `local`, on the benchmark's throw-away data dir, as `make run` starts them."""

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
    children = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "batchsite.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
         str(workers), "--threads", str(threads), "--log-level", "warning"], cwd=ROOT, env=env)]
    for i in range(nodes):
        children.append(subprocess.Popen(
            [sys.executable, "manage.py", "runnode", "--pool", "local", "--slots", str(slots), "--node-id",
             f"local-{i + 1}", "--account", "bench"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
    try:
        wait_port(port)
        deadline = time.monotonic() + 30
        while ComputeNode.objects.filter(pool=pool, state="idle").count() < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the nodes did not register")
            time.sleep(0.1)
        client = BatchClient(endpoint=f"http://127.0.0.1:{port}", credential=AzureNamedKeyCredential("bench", KEY))
        yield client, account, pool
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def poll_seconds() -> float:
    """How often the agents poll (the latency benchmarks print it beside their figures)."""
    from django.conf import settings

    return settings.BATCHSITE_NODE_POLL_SECONDS


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
