"""tasks.node.user_spawn: a root agent starts a task's process as another user without
forking itself, and the process is the agent's own child as if Popen had made it. The tests
that start processes run both ways: the native start (user_spawn.c, a vfork in the agent)
and the helper process it falls back to where it cannot be built."""

import ctypes
import os
import pwd
import shutil
import signal
import sys
import time

import psutil
import pytest

from tasks.node import process, user_spawn
from tasks.node.process import exit_status, reap, spawn
from tasks.node.user_spawn import Spawner
from tasks.nodehost.errors import LaunchError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def nobody():
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [entry.pw_gid]}


@pytest.fixture
def task_dir(tmp_path):
    (tmp_path / "wd").mkdir()
    os.chmod(tmp_path / "wd", 0o777)
    return tmp_path


needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


@pytest.fixture(params=[pytest.param("native", marks=needs_cc), "helper"])
def helper(request, monkeypatch):
    """A Spawner of this test's own (the module's one may be in use by another test)."""
    spawner = Spawner(native=request.param == "native")
    spawner._native_start()
    assert spawner.is_native == (request.param == "native")  # built, with a C compiler
    monkeypatch.setattr(process, "_SPAWNER", spawner)
    yield spawner
    assert spawner.is_native == (request.param == "native")
    spawner.close()


@pytest.fixture
def ignored_signals():
    """This process ignoring SIGHUP and 32 (glibc's SIGCANCEL, which CI's runner ignored), as
    whatever starts the service may: exec keeps a signal ignored. Set before the helper
    starts (it inherits them). Raw calls: glibc's sigaction refuses 32."""
    libc = ctypes.CDLL(None, use_errno=True)
    number = user_spawn._SYS_RT_SIGACTION
    ignore = (1).to_bytes(8, sys.byteorder) + bytes(24)  # handler SIG_IGN (1), no flags
    before = {sig: ctypes.create_string_buffer(32) for sig in (signal.SIGHUP, 32)}
    for sig, old in before.items():
        assert libc.syscall(number, sig, ignore, old, 8) == 0
    yield
    for sig, old in before.items():
        libc.syscall(number, sig, old.raw, None, 8)


@pytest.fixture
def python_helper(monkeypatch):
    """The helper process alone (where the native start cannot be built)."""
    spawner = Spawner(native=False)
    monkeypatch.setattr(process, "_SPAWNER", spawner)
    yield spawner
    spawner.close()


def start(task_dir, argv, user, env=None):
    return spawn(
        argv,
        env=env if env is not None else {"PATH": "/usr/bin:/bin", "FOO": "bar"},
        cwd=str(task_dir / "wd"),
        stdout=str(task_dir / "stdout.txt"),
        stderr=str(task_dir / "stderr.txt"),
        user=user,
        owner=(user["user"], user["group"]),
    )


def finish(child, timeout=10):
    deadline = time.monotonic() + timeout
    while exit_status(child) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return reap(child)


def test_the_process_runs_as_the_user_in_its_own_session_as_a_child_of_the_agent(
    task_dir, nobody, helper
):
    script = 'id -u; id -g; id -G; pwd; echo "$FOO"; ps -o ppid=,pgid=,sid= -p $$; exit 3'
    child = start(task_dir, ["/bin/sh", "-c", script], nobody)
    assert child.popen is None  # the helper made it, not a fork of this process
    code, _, _ = finish(child)  # wait4 here: it is this process's child
    assert code == 3
    uid, gid, groups, cwd, foo, tree = (task_dir / "stdout.txt").read_text().splitlines()
    assert (int(uid), int(gid), groups.split()) == (
        nobody["user"],
        nobody["group"],
        [str(nobody["group"])],
    )
    assert (cwd, foo) == (str(task_dir / "wd"), "bar")
    assert [int(v) for v in tree.split()] == [os.getpid(), child.pid, child.pid]


def test_nothing_of_roots_or_the_agents_reaches_the_process(
    ignored_signals, task_dir, nobody, helper
):
    """Saved ids and capabilities too (a saved uid 0 could take root back), no signal
    blocked or ignored (Python ignores SIGPIPE, the agent may have been started ignoring
    others), no descriptor but 0-2, stdin /dev/null."""
    pattern = "^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Amb)|SigBlk|SigIgn):"
    assert (
        finish(start(task_dir, ["/bin/grep", "-E", pattern, "/proc/self/status"], nobody))[0] == 0
    )
    lines = (task_dir / "stdout.txt").read_text().splitlines()
    fields = {name: value.split() for name, value in (line.split(":") for line in lines)}
    uid, gid = str(nobody["user"]), str(nobody["group"])
    assert fields.pop("Uid") == [uid] * 4 and fields.pop("Gid") == [gid] * 4
    assert fields.pop("Groups") == [gid]
    assert fields == {name: ["0" * 16] for name in fields} and len(fields) == 6
    script = "ls /proc/$$/fd; readlink /proc/$$/fd/0"
    leak = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leak, True)  # as a C library's descriptor may be
    try:
        assert finish(start(task_dir, ["/bin/sh", "-c", script], nobody))[0] == 0
    finally:
        os.close(leak)
    assert (task_dir / "stdout.txt").read_text().split() == ["0", "1", "2", "/dev/null"]


def _zombies() -> set[int]:
    return {p.pid for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE}


def test_a_program_that_cannot_exec_fails_to_launch_and_leaves_no_zombie(task_dir, nobody, helper):
    before = _zombies()  # an earlier test's in this worker are not this one's
    with pytest.raises(LaunchError) as e:
        start(task_dir, ["/nonexistent/program"], nobody)
    assert e.value.code == "CommandLaunchFailed"
    assert "No such file or directory" in e.value.message
    assert _zombies() - before == set()


def test_an_environment_no_process_can_have_fails_to_launch(task_dir, nobody, helper):
    with pytest.raises(LaunchError, match="illegal environment variable name"):
        start(task_dir, ["/bin/true"], nobody, env={"A=B": "x"})
    with pytest.raises(LaunchError, match="embedded null byte"):
        start(task_dir, ["/bin/true", "a\0b"], nobody)


def test_arguments_and_an_environment_larger_than_a_socket_buffer_go_through_the_helper(
    task_dir, nobody, helper
):
    """Past the 208 KiB a datagram can be by default (net.core.wmem_max), and bytes that are
    not UTF-8 arrive as they were (os.fsencode's surrogate escapes)."""
    big = "x" * 120_000  # each string at most 128 KiB (MAX_ARG_STRLEN)
    odd = os.fsdecode(b"caf\xe9")
    env = {"PATH": "/usr/bin:/bin", "BIG": big, "ODD": odd, "EMPTY": ""}
    script = 'printf "%s %s %s|" "${#BIG}" "${#1}" "${EMPTY-unset}"; printf "%s" "$ODD" "$2"'
    child = start(task_dir, ["/bin/sh", "-c", script, "sh", big, odd], nobody, env=env)
    assert child.popen is None  # not the fallback
    assert finish(child)[0] == 0
    assert (task_dir / "stdout.txt").read_bytes() == b"120000 120000 |caf\xe9caf\xe9"


def test_without_its_helper_the_agent_still_starts_the_process_by_forking(
    task_dir, nobody, python_helper
):
    python_helper._broken = True
    child = start(task_dir, ["/bin/sh", "-c", "id -u"], nobody)
    assert child.popen is not None
    assert finish(child)[0] == 0
    assert (task_dir / "stdout.txt").read_text() == f"{nobody['user']}\n"


def test_a_helper_that_died_is_replaced_at_the_next_start(task_dir, nobody, python_helper):
    finish(start(task_dir, ["/bin/true"], nobody))
    python_helper._helper.kill()
    python_helper._helper.wait()
    child = start(task_dir, ["/bin/true"], nobody)  # the dead one noticed: forked this once
    assert finish(child)[0] == 0
    child = start(task_dir, ["/bin/sh", "-c", "id -u"], nobody)
    assert child.popen is None  # a new helper
    assert finish(child)[0] == 0


@needs_cc
def test_the_native_start_is_built_once_and_used_only_where_no_one_else_may_write(
    tmp_path, monkeypatch
):
    source = tmp_path / "user_spawn.c"
    shutil.copy(user_spawn._SOURCE, source)
    monkeypatch.setattr(user_spawn, "_SOURCE", str(source))
    library = user_spawn.native_library()
    assert library is not None and os.path.dirname(library) == str(tmp_path / "__pycache__")
    built = os.stat(library).st_mtime_ns
    assert user_spawn.native_library() == library
    assert os.stat(library).st_mtime_ns == built  # not built again
    os.chmod(library, 0o777)
    assert user_spawn.native_library() is None  # anyone could have changed it
    os.unlink(library)
    os.chmod(tmp_path / "__pycache__", 0o777)
    assert user_spawn.native_library() is None
    os.chmod(tmp_path / "__pycache__", 0o755)
    source.write_text(source.read_text() + "\n/* changed */\n")
    assert user_spawn.native_library() not in (None, library)  # a new source, a new build


def test_without_a_compiler_the_helper_starts_them(tmp_path, monkeypatch, task_dir, nobody):
    source = tmp_path / "user_spawn.c"
    shutil.copy(user_spawn._SOURCE, source)
    monkeypatch.setattr(user_spawn, "_SOURCE", str(source))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert user_spawn.native_library() is None
    spawner = Spawner()
    monkeypatch.setattr(process, "_SPAWNER", spawner)
    try:
        child = start(task_dir, ["/bin/sh", "-c", "id -u"], nobody)
        assert child.popen is None and not spawner.is_native and spawner._helper is not None
        assert finish(child)[0] == 0
        assert (task_dir / "stdout.txt").read_text() == f"{nobody['user']}\n"
    finally:
        spawner.close()


def test_a_process_of_the_agents_own_user_starts_natively_with_no_signal_ignored(
    ignored_signals, task_dir, helper
):
    """No change of user (an agent that is not root; a root agent's admin tasks): the native
    start keeps the agent's user and resets every signal, where Popen would leave the ones
    the agent was started ignoring (`nohup`: SIGHUP) ignored. Without the native start,
    Popen: the helper would cost a fork where Popen's vfork costs none."""
    child = spawn(
        ["/bin/grep", "-E", "^(Uid|Gid|SigIgn):", "/proc/self/status"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=str(task_dir / "wd"),
        stdout=str(task_dir / "stdout.txt"),
        stderr=str(task_dir / "stderr.txt"),
    )
    assert (child.popen is None) == helper.is_native
    assert finish(child)[0] == 0
    lines = (task_dir / "stdout.txt").read_text().splitlines()
    fields = {name: value.split() for name, value in (line.split(":") for line in lines)}
    assert fields["Uid"] == [str(os.getuid())] * 4 and fields["Gid"] == [str(os.getgid())] * 4
    if helper.is_native:
        assert fields["SigIgn"] == ["0" * 16]
