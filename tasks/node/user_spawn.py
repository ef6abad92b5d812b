"""Starting a task's process as another user without forking the agent.

Python starts a process with vfork (the child borrows the parent's memory until it
execs) only when it keeps the parent's user: to switch users (`Popen(user=...)`) it
forks, and a fork copies the page tables of the whole agent (~50 MB with Django). On the
2-CPU machines this project is measured on, that fork took 14-25 ms where a vfork spawn
took 2-4 ms, and it bounded a root agent (every task runs as its pool's user) to ~60
tasks/s: bench_task_throughput.py ran 52-55 tasks/s where the same code starting its
tasks as root ran 118-247.

So a root agent starts them with the native start (user_spawn.c, compiled with the host's
C compiler at first use, kept beside this module's bytecode, loaded with ctypes): a vfork
(clone(CLONE_VM | CLONE_VFORK)) in the agent whose child sets its session, descriptors,
directory, groups and user (real, effective and saved) with raw system calls, then execs,
as posix_spawn does; the calling thread waits until it has exec'd and gets the errno of
the step that failed otherwise. A start as another user costs what a start as root costs.
A process of the agent's own user (every task of an agent that is not root; a root
agent's admin tasks) starts the same way, keeping the user: Popen would vfork too, but it
resets only SIGPIPE and SIGXFSZ, and a task would inherit every other signal the agent was
started ignoring (`nohup make run`: SIGHUP).

Where it cannot be built (no compiler), a small helper process of the agent's starts them
(this file, run as `python -I -S`, stdlib only, ~10 MB): the agent sends it the command,
environment, working directory, user and the stdout/stderr descriptors (SCM_RIGHTS on a
socket pair); the helper makes the process with `clone(CLONE_PARENT)`, so the process is
the agent's child as if the agent had made it (its exit wakes the agent's pidfd,
`waitid`/`wait4` see it, its CPU times are the agent's to collect), and the child sets
what the native start's sets, then execs. The helper answers with the pid or the errno
that stopped the child before exec (as Popen's error pipe does). The helper dies with the
agent (parent-death signal, and the socket's end). If it cannot be started or dies,
spawning falls back to Popen (the fork): slower, never wrong.

Issue 13 (2026-12-02, this machine, main f4fce5e against this change, interleaved; the
machine was shared, load average 3.5-8.7, so the direct baseline swung 300-2,000/s within
minutes and the ratios are noise-bound):
  - Where the time went: a py-spy profile (--idle) of main's agents in a 20,000-task run
    (load 6-7): 27 % of their time in Spawner.spawn, 20 % of it waiting for the helper's
    answer while it forked itself; 26-30 % waiting for the SQLite write lock, 11-17 %
    JobTasks.tend's ORM queries. Per start (/bin/true as nobody, serial, load 7, three
    rounds): the Python helper 3.3-3.6 ms a start call and 2.1 ms of CPU a task (agent
    0.2, helper 0.6-0.7, the forked child's copy-on-write before exec 0.7), a start as
    root (Popen, vfork) 0.9-2.2 ms and 0.7 ms of CPU.
  - A native helper process (clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT) in C, tried
    first) took it to the root figure in that micro-benchmark, but under load its agent
    still spent 46 % of its time in recv(): four wake-ups a start (agent, helper, child,
    helper) each waiting for a CPU. Hence the start in the agent itself.
  - The native start: 0.6-1.3 ms a start call and 0.7 ms of CPU a task, as root's. The
    agent's profile after it (load 5): 23 % starting processes (the exec itself), 22 %
    the SQLite write lock, 17 % JobTasks.tend.
  - bench_task_throughput.py --tasks 2000 --rounds 1, 2 nodes x 2 slots, tasks/s (ratio),
    runs back to back in this order:
      SQLite, the helper process (load 3.7-5.2): main 169 (0.21), 153 (0.25) -> 229 (0.41),
                  269 (0.40)
      SQLite, the start in the agent (load 3.6-9.3): main 462 (0.25), 141 (0.27), 118
                  (0.25), 134 (0.28), 85 (0.18), 169 (0.32), 139 (0.25), 252 (0.45), 163
                  (0.38) -> 186 (0.24), 209 (0.22), 217 (0.23), 177 (0.30), 190 (0.36), 128
                  (0.32), 303 (0.22), 138 (0.28), 277 (0.44); the helper process in the
                  same minutes: 122 (0.19), 206 (0.68)
      PostgreSQL (load 5.8-8.7): main 157 (0.22), 88 (0.15), 57 (0.11) -> 97 (0.29), 133
                  (0.22), 99 (0.18)
    20,000 tasks, SQLite: main 160 tasks/s (0.28, load 6-7); this change 398 (0.49, load
    5-6) and 243 (0.26, load 5). At this load the direct baseline itself swung 247-2,156/s
    and the end-to-end figures overlap: they show no slowdown and cannot show the ~1.4 ms
    of CPU a task saved (the micro-benchmark above).
  - In a quieter window (load 0.6-2.4), same runs, before -> after, back to back:
      SQLite:     362 (0.29) -> 477 (0.57), 377 (0.34) -> 522 (0.51), 401 (0.38) -> 519 (0.44)
      PostgreSQL: 259 (0.16) -> 349 (0.32), 287 (0.20) -> 330 (0.22)
    +30-45 % tasks/s on SQLite, +15-35 % on PostgreSQL. Not the lead's idle morning (main
    then: SQLite 482 tasks/s, 0.21; PostgreSQL 299, 0.13): issue 13's 0.52 on SQLite was
    reached in one pair (0.57), not shown as a median.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading

# clone(2)'s number and flags (x86_64, aarch64): CLONE_PARENT makes the new process a
# sibling of the helper, a child of the agent; SIGCHLD is the signal its exit sends there.
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())
_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}.get(platform.machine())
# The kernel's struct sigaction, all zero: SIG_DFL, no flags, nothing blocked.
_DEFAULT_ACTION = bytes(32)
_CLONE_PARENT = 0x00008000
_KEEP_USER = 0xFFFFFFFF  # user_spawn.c's KEEP_USER: the process keeps the agent's user
_PR_SET_PDEATHSIG = 1
_MAX_REQUEST = 1 << 22  # argv + environment, as JSON (Linux's ARG_MAX is 2 MB)
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "user_spawn.c")
_BUILD_TIMEOUT = 120


# --- the agent's side ----------------------------------------------------------------------


class Spawner:
    """How the agent starts its processes as other users: the native start, else its helper
    (made at first use). `native=False` keeps to the helper (the tests of that fallback)."""

    def __init__(self, *, native: bool = True) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._helper: subprocess.Popen | None = None
        self._native: _Native | None = None
        self._try_native = native
        self._broken = False  # the helper could not be started: Popen from now on

    def _helper_usable(self) -> bool:
        return _SYS_CLONE is not None and not self._broken

    @property
    def is_native(self) -> bool:
        """The native start is in use (False before the first start)."""
        return self._native is not None

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        fds: tuple[int, int],
        user: dict | None,
    ) -> int | None:
        """Start `argv` in a new session as `user` (Popen's user, group, extra_groups; None:
        the agent's own) with stdout, stderr = `fds`; return its pid (the agent's child), or
        None when neither the native start nor the helper is there, or when the helper
        would start a process of the agent's own user (the caller falls back to Popen,
        which vforks for those). Raises OSError when the child could not exec (its errno),
        ValueError for an argument or variable no process can have, as Popen does."""
        native = self._native_start()
        if native is None and (user is None or not self._helper_usable()):
            return None  # before _check: Popen checks the same
        _check(argv, env, cwd)
        if native is not None:
            return native.spawn(argv, env=env, cwd=cwd, fds=fds, user=user)
        request = json.dumps(
            {
                "argv": argv,
                "env": env,
                "cwd": cwd,
                "uid": user["user"],
                "gid": user["group"],
                "groups": list(user.get("extra_groups") or ()),
            }
        ).encode()
        with self._lock:
            sock = self._connect()
            if sock is None:
                return None
            try:
                socket.send_fds(sock, [request], list(fds))
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    return None  # larger than a datagram can be here: Popen this once
                reply = b""
            else:
                try:
                    reply = sock.recv(64)
                except OSError:
                    reply = b""
            if not reply:
                self._close()  # it died: a new one next time, Popen this time
                return None
        pid, err = struct.unpack("=ii", reply)
        if err:
            if pid > 0:
                # It never ran, and it is the agent's child: collect it here.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            raise OSError(err, os.strerror(err))
        return pid

    def _native_start(self) -> _Native | None:
        if self._native is None and self._try_native:
            with self._lock:
                if self._try_native:
                    self._try_native = False  # one attempt: a failed build is not retried
                    program = native_library()
                    if program is not None:
                        with contextlib.suppress(OSError, AttributeError):
                            self._native = _Native(program)
        return self._native

    def _connect(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # A datagram must fit the sender's buffer (EMSGSIZE): room for the largest request
        # (forced past net.core.wmem_max, 208 KiB by default, where the agent may: root).
        for option in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
            if option is not None:
                with contextlib.suppress(OSError):
                    ours.setsockopt(socket.SOL_SOCKET, option, _MAX_REQUEST + 4096)
                    break
        try:
            self._helper = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, str(theirs.fileno()), str(os.getpid())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        except OSError:
            self._broken = True
            ours.close()
            return None
        finally:
            theirs.close()
        self._sock = ours
        return ours

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._helper is not None:
            self._helper.kill()
            self._helper.wait()
            self._helper = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _check(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """What Popen refuses before it starts anything (ValueError), refused the same way."""
    for arg in (*argv, cwd):
        if "\0" in arg:
            raise ValueError("embedded null byte")
    for name, value in env.items():
        if "=" in name or "\0" in name:
            raise ValueError("illegal environment variable name")
        if "\0" in value:
            raise ValueError("embedded null byte")


class _Native:
    """user_spawn.c's batchsite_spawn, loaded into the agent."""

    def __init__(self, path: str) -> None:
        self._spawn = ctypes.CDLL(path).batchsite_spawn  # CDLL: the GIL is let go meanwhile
        self._spawn.restype = ctypes.c_int
        self._spawn.argtypes = [
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_uint32),
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        fds: tuple[int, int],
        user: dict | None,
    ) -> int:
        # fsencode: the bytes Popen would pass (surrogate escapes back to their bytes).
        args = [os.fsencode(a) for a in argv]
        variables = [os.fsencode(f"{name}={value}") for name, value in env.items()]
        groups = list(user.get("extra_groups") or ()) if user else []
        uid, gid = (user["user"], user["group"]) if user else (_KEEP_USER, _KEEP_USER)
        failed = ctypes.c_int(0)
        pid = self._spawn(
            os.fsencode(cwd),
            (ctypes.c_char_p * (len(args) + 1))(*args, None),
            (ctypes.c_char_p * (len(variables) + 1))(*variables, None),
            uid,
            gid,
            len(groups),
            (ctypes.c_uint32 * max(len(groups), 1))(*groups),
            fds[0],
            fds[1],
            ctypes.byref(failed),
        )
        if pid < 0:
            raise OSError(failed.value, os.strerror(failed.value))
        return pid


def native_library() -> str | None:
    """The native start: user_spawn.c compiled with the host's C compiler ($CC, else cc)
    into __pycache__ beside this module, named by the source's hash, the way Python keeps
    this module's bytecode there (whoever may write there can change what the agent runs
    anyway). Built once per source; None where there is no compiler or the build fails,
    or the directory or library is writable by anyone but its owner (the agent then uses
    the helper)."""
    import hashlib  # here: the helper, which imports this module, has no use for them
    import shutil

    try:
        with open(_SOURCE, "rb") as f:
            source = f.read()
    except OSError:
        return None  # not installed with the package
    digest = hashlib.sha256(source + platform.machine().encode()).hexdigest()[:16]
    directory = os.path.join(os.path.dirname(_SOURCE), "__pycache__")
    library = os.path.join(directory, f"user_spawn-{digest}.so")
    try:
        os.makedirs(directory, exist_ok=True)
        if not _trusted(os.stat(directory)):
            return None
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(library)
            return library if stat.S_ISREG(st.st_mode) and _trusted(st) else None
        compiler = shutil.which(os.environ.get("CC") or "cc")
        if compiler is None:
            return None
        building = f"{library}.{os.getpid()}.{threading.get_ident()}"
        try:
            built = subprocess.run(
                [compiler, "-O2", "-shared", "-fPIC", "-o", building, _SOURCE],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=_BUILD_TIMEOUT,
            )
            if built.returncode != 0:
                return None
            os.chmod(building, 0o755)
            os.replace(building, library)  # another agent building it too: either one wins
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(building)
    except (OSError, subprocess.SubprocessError):
        return None
    return library


def _trusted(st: os.stat_result) -> bool:
    """Owned by root or the agent's user, and writable by that owner alone."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


# --- the Python helper (where the native start cannot be built) ----------------------------


def serve(fd: int, agent_pid: int) -> None:
    """The helper's loop: one request, one process, one answer, until the agent goes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != agent_pid:
        return  # the agent went before the signal was armed
    clone = libc.syscall
    clone.restype = ctypes.c_long
    devnull = os.open(os.devnull, os.O_RDONLY)
    sock = socket.socket(fileno=fd)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 2)
        except OSError:
            return
        if not data:
            return  # the agent closed its end
        try:
            pid, err = _start(clone, ctypes.get_errno, json.loads(data), devnull, fds)
        finally:
            for passed in fds:
                os.close(passed)
        sock.send(struct.pack("=ii", pid, err))


def _start(clone, get_errno, request: dict, devnull: int, fds: list[int]) -> tuple[int, int]:
    """Make the process (a child of the agent's) and wait until it has exec'd or failed."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = clone(_SYS_CLONE, _CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        _child(clone, request, devnull, fds, w)  # never returns
    os.close(w)
    if pid < 0:
        os.close(r)
        return 0, get_errno() or errno.ENOMEM  # fork's usual failure
    failed = b""
    while chunk := os.read(r, 4):
        failed += chunk
    os.close(r)
    if len(failed) == 4:
        return pid, struct.unpack("=i", failed)[0]  # it exited before exec
    return pid, 0


def _child(syscall, request: dict, devnull: int, fds: list[int], w: int) -> None:
    """In the new process: only system calls, then exec (or report errno and exit)."""
    try:
        # Every disposition the default, as user_spawn.c's child sets them (which says
        # why): raw calls, since glibc refuses its own two, 32 and 33.
        for sig in range(1, 65):
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                syscall(_SYS_RT_SIGACTION, sig, _DEFAULT_ACTION, None, 8)
        os.setsid()
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.closerange(3, w)
        os.closerange(w + 1, 1 << 20)
        os.chdir(request["cwd"])
        os.setgroups(request["groups"])
        os.setresgid(request["gid"], request["gid"], request["gid"])
        os.setresuid(request["uid"], request["uid"], request["uid"])
        argv = request["argv"]
        os.execve(argv[0], argv, request["env"])
    except OSError as e:
        os.write(w, struct.pack("=i", e.errno or 1))
    except BaseException:  # noqa: BLE001 - whatever it is, the child must not return
        os.write(w, struct.pack("=i", 1))
    os._exit(255)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
