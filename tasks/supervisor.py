"""A small process supervisor: named commands, each restarted with backoff when it dies.

`serve` runs the web server, the sweep and the local node agents under it, so the death of
one (a crash, an OOM kill, a `kill -9`) no longer stops the others: what died is logged and
started again after a delay that doubles while it keeps dying quickly (1 s, 2 s, 4 s, ...,
at most `max_backoff`) and goes back to the first step once it has stayed up for
`healthy_after`. Whatever a dead command left in its process group (gunicorn's workers
when its master died) is killed before it is started again, so the new one finds its port
and its node free. A node agent's task processes run in sessions of their own: the agent
kills what its predecessor left behind when it starts again (tasks.node.process).

Each command leads a session of its own, so the terminal's Ctrl-C reaches only the
supervisor, which then stops them in order: SIGTERM to each (a node agent requeues its
running tasks, gunicorn finishes its requests), SIGKILL to what is still running after
`stop_timeout`, or at once on a second Ctrl-C. If the supervisor itself is killed, its
commands get SIGTERM from the kernel (a parent-death signal), not an orphaned life.

Why not supervisord, circus or honcho: the first two are daemons with their own
configuration and control sockets, honcho stops everything when one command exits (the
behaviour this module exists to replace); `serve` must stay one command on a fresh clone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("batchsite.supervisor")

_PR_SET_PDEATHSIG = 1
# Looked up once here: the child calls it between fork and exec, where little is safe.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Program:
    """One supervised command: `name` is what the log calls it."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # None: the supervisor's own environment


@dataclass
class _Child:
    program: Program
    popen: subprocess.Popen | None = None
    started: float = 0.0
    quick_deaths: int = 0  # consecutive deaths before `healthy_after`: the backoff's exponent
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Run `programs` until SIGINT, SIGTERM or SIGHUP; restart each one that dies.

    Must run in the main thread of a process without other threads (it installs signal
    handlers and starts commands with a parent-death signal set between fork and exec).
    """

    def __init__(
        self,
        programs: Sequence[Program],
        *,
        backoff: float = 1.0,
        max_backoff: float = 16.0,
        healthy_after: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        names = [p.name for p in programs]
        if len(set(names)) != len(names):
            raise ValueError(f"program names must be unique: {names}")
        self.children = [_Child(p) for p in programs]
        self.backoff, self.max_backoff = backoff, max_backoff
        self.healthy_after, self.stop_timeout = healthy_after, stop_timeout
        self._stop_requests = 0
        self._wake_r = self._wake_w = -1

    # --- life ------------------------------------------------------------------------

    def run(self) -> None:
        """Start every program and supervise them; return once all have stopped."""
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        previous_fd = signal.set_wakeup_fd(self._wake_w)
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in STOP_SIGNALS}
        # A handler (doing nothing) makes a child's death write to the wake-up pipe.
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        try:
            for child in self.children:
                self._start(child)
            while not self._stop_requests:
                self._collect_deaths()
                self._restart_due()
                self._sleep(self._next_deadline())
            self._stop_all()
        finally:
            for child in self.children:  # whatever happened above, leave nothing running
                if child.popen is not None and child.popen.poll() is None:
                    _kill_group(child.popen.pid)
                    child.popen.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_stop_signal(self, signum, frame) -> None:
        self._stop_requests += 1
        if self._stop_requests == 1:
            log.warning(
                "supervisor: stopping (%s); press Ctrl-C again to kill at once",
                signal.Signals(signum).name,
            )

    def _sleep(self, deadline: float | None) -> None:
        timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], timeout)
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    def _next_deadline(self) -> float | None:
        due = [c.restart_at for c in self.children if c.restart_at is not None]
        return min(due) if due else None

    # --- starting and restarting -----------------------------------------------------

    def _start(self, child: _Child) -> None:
        program = child.program
        child.restart_at = None
        child.started = time.monotonic()
        env = None if program.env is None else dict(program.env)
        try:
            child.popen = subprocess.Popen(
                list(program.argv), env=env, start_new_session=True, preexec_fn=_die_with_parent
            )
        except OSError as e:
            log.error("supervisor: %s could not start: %s", program.name, e)
            child.popen = None
            self._schedule_restart(child)
            return
        log.info("supervisor: started %s (pid %d)", program.name, child.popen.pid)
        if child.restarts:
            log.warning(
                "supervisor: %s restarted (pid %d, restart %d)",
                program.name,
                child.popen.pid,
                child.restarts,
            )

    def _collect_deaths(self) -> None:
        for child in self.children:
            if child.popen is None or not _has_exited(child.popen.pid):
                continue
            pid = child.popen.pid
            # The leader is still an unreaped zombie, so its group id cannot have been
            # reused: whatever is left in the group is this command's, and is killed.
            _kill_group(pid)
            status = child.popen.wait()
            child.popen = None
            log.warning(
                "supervisor: %s (pid %d) %s after %.1f s",
                child.program.name,
                pid,
                _describe(status),
                time.monotonic() - child.started,
            )
            self._schedule_restart(child)

    def _schedule_restart(self, child: _Child) -> None:
        if time.monotonic() - child.started >= self.healthy_after:
            child.quick_deaths = 0
        delay = min(self.max_backoff, self.backoff * 2**child.quick_deaths)
        child.quick_deaths += 1
        child.restart_at = time.monotonic() + delay
        log.warning("supervisor: restarting %s in %.1f s", child.program.name, delay)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None and child.restart_at <= now:
                child.restarts += 1
                self._start(child)

    # --- stopping ----------------------------------------------------------------------

    def _stop_all(self) -> None:
        """SIGTERM to every command, SIGKILL to what still runs after stop_timeout (or at
        a second stop signal); then what any of them left in its process group."""
        live = [c for c in self.children if c.popen is not None]
        for child in live:
            with contextlib.suppress(ProcessLookupError):
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        killed = False
        while True:
            running = [c for c in live if not _has_exited(c.popen.pid)]
            if not running:
                break
            if not killed and (self._stop_requests > 1 or time.monotonic() >= deadline):
                for child in running:
                    log.warning(
                        "supervisor: killing %s (pid %d)", child.program.name, child.popen.pid
                    )
                    _kill_group(child.popen.pid)
                killed = True
            self._sleep(None if killed else deadline)
        for child in live:
            _kill_group(child.popen.pid)
            child.popen.wait()
            child.popen = None


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (WNOWAIT keeps the zombie)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _describe(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, so that a killed
    supervisor leaves no command running without it."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
