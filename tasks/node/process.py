"""Starting, watching and killing a task's processes, as a Batch Linux node does.

The command line runs without a shell (users write `/bin/sh -c '...'`), split with
shlex, in the task's working directory, with stdout and stderr going to the task
directory's stdout.txt and stderr.txt. Each command starts its own session, so it and
everything it starts form one process group that a kill reaches at once.

If an agent dies without stopping its tasks (SIGKILL), their processes are found by the
AZ_BATCH_NODE_ID / AZ_BATCH_NODE_ROOT_DIR they inherit and killed: by an agent on the same
host when it finds the node lost (before the tasks are requeued), and in any case by the
agent itself when it restarts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta

import psutil

from tasks.nodehost import disk
from tasks.nodehost.errors import LaunchError

from .user_spawn import Spawner

# The agent's own environment (which holds database URLs and keys) never reaches a task;
# only these variables are passed through, below the task's own settings.
PASSED_THROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A command line shlex would split on its whitespace alone (no quotes, no backslashes),
# into these words.
_PLAIN = re.compile(r"[^'\"\\]*")
_WORD = re.compile(r"[^ \t\r\n]+")
# Starts the processes: natively where it can be built, as another user (a root agent's
# tasks) or the agent's own; see user_spawn.
_SPAWNER = Spawner()


def passed_through() -> dict[str, str]:
    """The agent's own variables a task gets (PATH at least)."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def environment(
    *,
    job_settings: list[dict] | None,
    task_settings: list[dict] | None,
    batch: dict[str, str],
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """A task's environment: a few variables of the agent's (`base`, from
    passed_through()), then the job's commonEnvironmentSettings, then the task's
    environmentSettings (a task setting wins over the job's), then the AZ_BATCH_*
    variables, which the service owns."""
    env = dict(base) if base is not None else passed_through()
    for setting in (job_settings or []) + (task_settings or []):
        if setting.get("name"):
            env[setting["name"]] = setting.get("value") or ""
    env.update(batch)
    return env


def command_argv(command_line: str, *, env: dict[str, str], cwd: str) -> list[str]:
    """Split a command line like a POSIX shell would split words (no expansion) and find
    its program: a name with a slash relative to the working directory, else on the
    task's PATH. Raises LaunchError CommandProgramNotFound / CommandLaunchFailed."""
    if _PLAIN.fullmatch(command_line):
        argv = _WORD.findall(command_line)  # what shlex makes of a line without quotes or escapes
    else:
        try:
            argv = shlex.split(command_line)
        except ValueError as e:
            raise LaunchError(
                "CommandLaunchFailed", f"The command line cannot be parsed: {e}."
            ) from None
    if not argv:
        raise LaunchError("CommandLaunchFailed", "The command line is empty.")
    program = argv[0]
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise LaunchError("CommandProgramNotFound", f"The program {program} was not found.")
    else:
        path = shutil.which(program, path=env.get("PATH", DEFAULT_PATH))
        if path is None:
            raise LaunchError(
                "CommandProgramNotFound", f"The program {program} was not found on PATH."
            )
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise LaunchError(
            "CommandLaunchFailed", f"The program {program} is not an executable file."
        )
    return [path, *argv[1:]]


@dataclass
class Child:
    """One started command: its process group is its pid (it leads its own session)."""

    pid: int
    popen: subprocess.Popen | None  # None when the user_spawn helper started it
    started: float  # time.time() at start, to recognise the group after a restart
    pidfd: int | None = None
    exited_status: int | None = None  # wait status once seen (the zombie is kept until reaped)

    @property
    def pgid(self) -> int:
        return self.pid


def spawn(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    stdout: str,
    stderr: str,
    append: bool = False,
    dir_fd: int | None = None,
    user: dict | None = None,
    owner: tuple[int, int] | None = None,
) -> Child:
    """Start `argv` (argv[0] an absolute program path) in a new session. With `dir_fd`,
    `stdout` and `stderr` are names in that directory (the task's), opened without
    following a link (disk.open_output); else paths. `user` is Popen's user, group and
    extra_groups (tasks.nodehost.identity.Identity.popen_kwargs), `owner` the uid and gid the
    output files are given (the task's user's: they are its files). Raises LaunchError
    CommandLaunchFailed when the process cannot be made: exec fails (bad format,
    permission), or the environment or arguments are not ones a process can have (a name
    with "=", a NUL: Popen's ValueError)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    out = err = -1
    try:
        # Plain descriptors: a buffered file object costs syscalls nobody needs here.
        if dir_fd is None:
            out, err = os.open(stdout, flags, 0o644), os.open(stderr, flags, 0o644)
        else:
            out = disk.open_output(dir_fd, stdout, append=append)
            err = disk.open_output(dir_fd, stderr, append=append)
        if owner is not None:
            for fd in (out, err):
                os.fchown(fd, *owner)
        # The native start (another user: else the helper, not a fork of the agent), every
        # signal at its default (user_spawn); None: neither is there, Popen starts it.
        pid = _SPAWNER.spawn(argv, env=env, cwd=cwd, fds=(out, err), user=user or None)
        if pid is not None:
            popen = None
        else:
            popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                **(user or {}),
            )
            pid = popen.pid
    except OSError as e:
        raise LaunchError(
            "CommandLaunchFailed", f"The command could not start: {e.strerror or e}."
        ) from None
    except (ValueError, TypeError) as e:
        raise LaunchError("CommandLaunchFailed", f"The command could not start: {e}.") from None
    finally:
        for fd in (out, err):
            if fd >= 0:
                os.close(fd)
    child = Child(pid=pid, popen=popen, started=time.time())
    with contextlib.suppress(OSError, AttributeError):
        child.pidfd = os.pidfd_open(pid)
    return child


def exit_status(child: Child) -> int | None:
    """The wait status if the command has exited, without reaping it: the zombie keeps its
    pid and process-group id reserved, so a later kill of the group cannot hit a
    stranger."""
    return _peek(child, os.WNOHANG)


def wait_exit(child: Child) -> int | None:
    """Wait until the command has exited (after a SIGKILL: at once), without reaping it;
    its wait status (exit_status)."""
    return _peek(child, 0)


def _peek(child: Child, flags: int) -> int | None:
    """The wait status once the command has exited, seen with waitid(WNOWAIT) and kept."""
    if child.exited_status is not None:
        return child.exited_status
    try:
        info = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT | flags)
    except ChildProcessError:
        info = None
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        child.exited_status = info.si_status << 8
    else:
        child.exited_status = info.si_status & 0x7F  # killed by this signal
    return child.exited_status


def exit_code_of(status: int) -> int:
    """A process killed by a signal reports 128 + the signal, as a shell would."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def reap(child: Child) -> tuple[int, timedelta, timedelta]:
    """Kill whatever the command left in its group, collect it, and return its exit code
    with its user and kernel CPU time (its own and its waited-for children's)."""
    signal_group(child, signal.SIGKILL)
    _, status, usage = os.wait4(child.pid, 0)
    if child.popen is not None:
        child.popen.returncode = status  # the Popen object must not try to reap it again
    close(child)
    return (
        exit_code_of(status),
        timedelta(seconds=usage.ru_utime),
        timedelta(seconds=usage.ru_stime),
    )


def close(child: Child) -> None:
    if child.pidfd is not None:
        with contextlib.suppress(OSError):
            os.close(child.pidfd)
        child.pidfd = None


def signal_group(child: Child, sig: int) -> None:
    """Signal the command's whole process group, and any descendant that left it."""
    strays: list[psutil.Process] = []
    if sig == signal.SIGKILL and child.exited_status is None:
        with contextlib.suppress(psutil.Error):
            strays = [
                p
                for p in psutil.Process(child.pid).children(recursive=True)
                if _pgid(p) != child.pgid
            ]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pgid, sig)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def kill_node_processes(node_id: str, root_dir: str) -> int:
    """Kill every process a node's tasks left behind, found by the AZ_BATCH_NODE_ID and
    AZ_BATCH_NODE_ROOT_DIR every task process (and what it starts) inherits. Used when
    the node's agent died without stopping them: by the agent itself when it restarts, and
    by an agent on the same host that finds the node lost. Returns how many it killed."""
    killed = 0
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue  # gone, or another user's
        if env.get("AZ_BATCH_NODE_ID") == node_id and env.get("AZ_BATCH_NODE_ROOT_DIR") == root_dir:
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed += 1
    return killed
