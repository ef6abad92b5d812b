"""Real node agents for tests: `manage.py runnode` subprocesses pointed at the test
database (the SQLite test file, or PostgreSQL's test_<name>), with short intervals.

Import the `agents` fixture into a test module (`from tests.agents import agents`). Its
agents are stopped (SIGTERM) before the test database is flushed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tasks.models import Attempt, ComputeNode, Pool
from tasks.nodehost import layout

ROOT = Path(__file__).resolve().parents[1]
FAST = {
    "BATCHSITE_NODE_POLL_SECONDS": "0.1",
    "BATCHSITE_NODE_HEARTBEAT_SECONDS": "0.5",
    "BATCHSITE_NODE_KILL_GRACE_SECONDS": "1",
}


def database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "localhost"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{s['NAME']}"


def wait_for(
    predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"
):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def logged_spec(i: int, log: Path, *, then: str = "") -> dict:
    """Task t<i> for the agent races: it appends its id to `log` (then runs `then`), as
    root, since the log is in the test's tmp_path."""
    return {
        "id": f"t{i}",
        "commandLine": f"/bin/sh -c 'echo $AZ_BATCH_TASK_ID >> {log}{then}'",
        "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
    }


def assert_each_ran_once(job, log: Path, total: int) -> Counter:
    """Each of the job's `total` tasks ran exactly once (its line in `log`) and has
    exactly one attempt; the attempts by node, for the race's own checks."""
    runs = Counter(log.read_text().split())
    assert len(runs) == total and set(runs.values()) == {1}
    per_task = Counter(Attempt.objects.filter(job=job).values_list("task_id", flat=True))
    assert len(per_task) == total and set(per_task.values()) == {1}
    return Counter(Attempt.objects.filter(job=job).values_list("node_name", flat=True))


class AgentGroup:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: set[str] = set()

    def start(
        self,
        pool: Pool,
        node_id: str,
        *,
        slots: int = 2,
        wait: bool = True,
        clean: bool = True,
        low_priority: bool = False,
        ready: tuple[str, ...] = ("idle", "running"),
        **env: str,
    ) -> subprocess.Popen:
        if clean:
            shutil.rmtree(
                layout.node_root(settings.DATA_DIR, pool.account.name, pool.pool_id, node_id),
                ignore_errors=True,
            )
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "BATCHSITE_DATA_DIR": str(settings.DATA_DIR),
            **FAST,
            **env,
        }
        log = open(self.log_dir / f"{node_id}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "runnode",
                "--pool",
                pool.pool_id,
                "--slots",
                str(slots),
                "--node-id",
                node_id,
                "--account",
                pool.account.name,
                *(["--low-priority"] if low_priority else []),
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[node_id] = proc
        self.started.add((pool.account.name, pool.pool_id, node_id))
        if wait:
            wait_for(
                lambda: (
                    proc.poll() is not None
                    or ComputeNode.objects.filter(
                        pool=pool, node_id=node_id, agent_pid=proc.pid, state__in=ready
                    ).exists()
                ),
                timeout=30,
                message=f"node {node_id} to register",
            )
            assert proc.poll() is None, self.log(node_id)
        return proc

    def log(self, node_id: str) -> str:
        path = self.log_dir / f"{node_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, node_id: str) -> None:
        """SIGKILL: the agent gets no chance to clean up."""
        proc = self.procs[node_id]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, node_id: str, timeout: float = 15) -> int:
        proc = self.procs.pop(node_id)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for node_id in list(self.procs):
            self.stop(node_id)


@pytest.fixture
def agents(transactional_db, tmp_path):
    group = AgentGroup(tmp_path)
    yield group
    group.stop_all()
    for account, pool_id, node_id in group.started:
        shutil.rmtree(
            layout.node_root(settings.DATA_DIR, account, pool_id, node_id), ignore_errors=True
        )
