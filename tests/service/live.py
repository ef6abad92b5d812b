"""A real `manage.py serve` for the tests: its own data dir, port and database, signed
requests against it, and a look at the processes it supervises."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlencode

import psutil

from batchsite.env import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME
from tests.agents import FAST, wait_for
from tests.conftest import API, sign

ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(ROOT / "manage.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without batchsite's settings (so a served instance never
    touches the test database or another configured account), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHSITE_", "DJANGO_", "DATABASE_URL", "PORT"))
    }
    return {**env, **FAST, **extra}


def manage(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, MANAGE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


class Api:
    """Signed Batch requests with the plain standard library (no retries: every answer counts)."""

    def __init__(
        self, port: int, account: str = DEV_ACCOUNT_NAME, key: str = DEV_ACCOUNT_KEY
    ) -> None:
        self.port, self.account, self.key = port, account, key

    def call(
        self, method: str, path: str, body=None, *, timeout: float = 30, **params
    ) -> tuple[int, dict]:
        url = f"{path}?{urlencode({'api-version': API, **params})}"
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"ocp-date": formatdate(usegmt=True)}
        if method not in ("GET", "HEAD"):
            headers["content-length"] = str(len(data))
        if data:
            headers["content-type"] = "application/json; odata=minimalmetadata"
        headers["Authorization"] = sign(method, url, headers, self.account, self.key)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, url, body=data or None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else {}
        except ValueError:
            return response.status, {"raw": raw[:200].decode(errors="replace")}

    def answers(self, path: str = "/pools/local") -> bool:
        try:
            return self.call("GET", path, timeout=5)[0] == 200
        except OSError:
            return False


class Serve:
    """`manage.py serve` as `make run` starts it, in a session of its own (a shell's job)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str],
        nodes: int = 1,
        slots: int = 1,
        args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = data_dir / f"serve-{self.port}.log"
        self.api = Api(self.port)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    MANAGE,
                    "serve",
                    "--port",
                    str(self.port),
                    "--nodes",
                    str(nodes),
                    "--slots",
                    str(slots),
                    *args,
                ],
                cwd=ROOT,
                env={**env, "BATCHSITE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, nodes: int = 1) -> None:
        def ready():
            assert self.proc.poll() is None, f"serve exited:\n{self.log()}"
            if not self.api.answers():
                return False
            status, body = self.api.call("GET", "/pools/local/nodes")
            return status == 200 and sum(n["state"] == "idle" for n in body["value"]) >= nodes

        wait_for(
            ready, timeout=120, interval=0.2, message=f"serve to answer with {nodes} idle node(s)"
        )

    def children(self) -> dict[str, psutil.Process]:
        """The supervised processes by role: web, reconciler, sweep."""
        found = {}
        for child in psutil.Process(self.proc.pid).children():
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "gunicorn" in cmd:
                found["web"] = child
            elif "sweep" in cmd:
                found["sweep"] = child
            elif "reconcile" in cmd:
                found["reconciler"] = child
        return found

    def agents(self) -> dict[str, psutil.Process]:
        """The node agents the reconciler runs (in sessions of their own), by node id."""
        found = {}
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            if "runnode" in cmd and "--node-id" in cmd:
                found[cmd[cmd.index("--node-id") + 1]] = proc
        return found

    def tree(self) -> list[int]:
        """Every process below serve, the node agents included."""
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            pids = self.tree()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in pids:
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def until_replaced(serve: Serve, role: str, old_pid: int, timeout: float = 60) -> psutil.Process:
    """Wait for serve's `role` process to be a new one."""

    def replaced():
        assert serve.proc.poll() is None, f"serve exited:\n{serve.log()}"
        child = serve.children().get(role)
        return child if child is not None and child.pid != old_pid else None

    return wait_for(
        replaced, timeout=timeout, interval=0.1, message=f"{role} to be restarted\n{serve.log()}"
    )
