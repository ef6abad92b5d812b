"""A throwaway PostgreSQL cluster (initdb in a temporary directory, on a free port) for the
tests and the soak run that restart PostgreSQL, never the shared server. No Django here:
the soak driver imports it without settings."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from glob import glob
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> str | None:
    for candidate in [
        "/usr/lib/postgresql/15/bin",
        *sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True),
    ]:
        if os.access(f"{candidate}/initdb", os.X_OK) and os.access(f"{candidate}/pg_ctl", os.X_OK):
            return candidate
    found = shutil.which("initdb")
    return os.path.dirname(found) if found and shutil.which("pg_ctl") else None


def unavailable_reason() -> str | None:
    """Why no throwaway cluster can run here, or None."""
    if postgres_bindir() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run a throwaway cluster as"
    return None


class Cluster:
    """A throwaway PostgreSQL cluster: initdb'ed in a temporary directory, on a free port,
    run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="bs-pg-"))
        self.data, self.log = self.base / "data", self.base / "postgres.log"
        self.port = free_port()
        self.as_user = {}
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
            self.as_user = {"user": pg.pw_uid, "group": pg.pw_gid, "extra_groups": []}
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/batchsite"

    def run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.base),
        }
        proc = subprocess.run(
            [f"{self.bindir}/{program}", *args],
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **self.as_user,
        )
        assert proc.returncode == 0, (
            f"{program} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        )
        return proc

    def start(self) -> None:
        self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "batchsite")

    def restart(self) -> None:
        # "fast": every session is ended at once, as an operator's restart or a failover does.
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                **self.as_user,
            )
        shutil.rmtree(self.base, ignore_errors=True)
