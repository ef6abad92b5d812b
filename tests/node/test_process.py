"""tasks.node.process: how a command line becomes a process, and how it is killed."""

import os
import signal
import time

import psutil
import pytest

from tasks.node.process import (
    command_argv,
    environment,
    exit_code_of,
    exit_status,
    kill_node_processes,
    reap,
    signal_group,
    spawn,
)
from tasks.nodehost.errors import LaunchError


@pytest.fixture
def task_dir(tmp_path):
    (tmp_path / "wd").mkdir()
    return tmp_path


def run(task_dir, command_line, env=None, timeout=10):
    env = env or environment(job_settings=None, task_settings=None, batch={})
    child = spawn(
        command_argv(command_line, env=env, cwd=str(task_dir / "wd")),
        env=env,
        cwd=str(task_dir / "wd"),
        stdout=str(task_dir / "stdout.txt"),
        stderr=str(task_dir / "stderr.txt"),
    )
    deadline = time.monotonic() + timeout
    while exit_status(child) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    code, _, _ = reap(child)
    return code


def test_a_command_line_is_split_like_shell_words_but_never_expanded(task_dir):
    assert run(task_dir, "/bin/echo $HOME 'a  b' \"c d\" *") == 0
    assert (task_dir / "stdout.txt").read_text() == "$HOME a  b c d *\n"


@pytest.mark.parametrize(
    "line",
    [
        "/bin/echo a  b",
        "/bin/echo\ta\nb\r c ",
        "/bin/echo a\xa0b c\x0bd #e",
        "/bin/echo 'a  b' c",
        '/bin/echo "a\\"b" c',
        "/bin/echo a\\ b",
    ],
)
def test_lines_without_quotes_are_split_exactly_as_shlex_splits_them(task_dir, line):
    import shlex

    env = environment(job_settings=None, task_settings=None, batch={})
    assert command_argv(line, env=env, cwd=str(task_dir))[1:] == shlex.split(line)[1:]


def test_output_goes_to_the_task_files_and_the_exit_code_comes_back(task_dir):
    assert run(task_dir, "/bin/sh -c 'echo out; echo err >&2; exit 7'") == 7
    assert (task_dir / "stdout.txt").read_text() == "out\n"
    assert (task_dir / "stderr.txt").read_text() == "err\n"


def test_the_program_is_found_on_the_tasks_path(task_dir):
    env = environment(
        job_settings=None, task_settings=[{"name": "PATH", "value": "/bin:/usr/bin"}], batch={}
    )
    assert command_argv("true --x", env=env, cwd=str(task_dir))[0] in ("/bin/true", "/usr/bin/true")


def test_a_relative_program_is_found_in_the_working_directory(task_dir):
    script = task_dir / "wd" / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    assert run(task_dir, "./run.sh") == 0
    assert (task_dir / "stdout.txt").read_text() == "ran\n"


@pytest.mark.parametrize(
    ("command_line", "code"),
    [
        ("no-such-program", "CommandProgramNotFound"),
        ("/no/such/program", "CommandProgramNotFound"),
        ("./missing.sh", "CommandProgramNotFound"),
        ("./plain.txt", "CommandLaunchFailed"),  # not executable
        ("/tmp", "CommandLaunchFailed"),  # a directory
        ("'unbalanced", "CommandLaunchFailed"),
        ("   ", "CommandLaunchFailed"),
    ],
)
def test_a_command_that_cannot_start_names_the_batch_failure_code(task_dir, command_line, code):
    (task_dir / "wd" / "plain.txt").write_text("not a program")
    env = environment(job_settings=None, task_settings=None, batch={})
    with pytest.raises(LaunchError) as e:
        command_argv(command_line, env=env, cwd=str(task_dir / "wd"))
    assert e.value.code == code


def test_an_executable_without_a_known_format_fails_to_launch(task_dir):
    script = task_dir / "wd" / "noshebang"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    env = environment(job_settings=None, task_settings=None, batch={})
    argv = command_argv("./noshebang", env=env, cwd=str(task_dir / "wd"))
    with pytest.raises(LaunchError) as e:
        spawn(
            argv,
            env=env,
            cwd=str(task_dir / "wd"),
            stdout=str(task_dir / "o"),
            stderr=str(task_dir / "e"),
        )
    assert e.value.code == "CommandLaunchFailed"


@pytest.mark.parametrize(
    "task_settings", [[{"name": "A=B", "value": "1"}], [{"name": "A", "value": 5}]]
)
def test_an_environment_no_process_can_have_fails_to_launch(task_dir, task_settings):
    env = environment(job_settings=None, task_settings=task_settings, batch={})
    argv = command_argv("/bin/true", env=env, cwd=str(task_dir / "wd"))
    with pytest.raises(LaunchError) as e:
        spawn(
            argv,
            env=env,
            cwd=str(task_dir / "wd"),
            stdout=str(task_dir / "o"),
            stderr=str(task_dir / "e"),
        )
    assert e.value.code == "CommandLaunchFailed"


def test_the_environment_layers_agent_job_task_and_batch_variables(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = environment(
        job_settings=[{"name": "A", "value": "job"}, {"name": "B", "value": "job"}],
        task_settings=[
            {"name": "B", "value": "task"},
            {"name": "AZ_BATCH_TASK_ID", "value": "spoofed"},
        ],
        batch={"AZ_BATCH_TASK_ID": "t1"},
    )
    assert (env["A"], env["B"], env["AZ_BATCH_TASK_ID"], env["LANG"]) == (
        "job",
        "task",
        "t1",
        "C.UTF-8",
    )
    assert "DATABASE_URL" not in env and env["PATH"]


def test_a_signal_death_reports_128_plus_the_signal():
    assert exit_code_of(signal.SIGKILL) == 137
    assert exit_code_of(3 << 8) == 3


def test_killing_a_command_kills_everything_it_started(task_dir):
    env = environment(job_settings=None, task_settings=None, batch={})
    child = spawn(
        command_argv(
            "/bin/sh -c 'sleep 60 & echo $! > bg; wait'", env=env, cwd=str(task_dir / "wd")
        ),
        env=env,
        cwd=str(task_dir / "wd"),
        stdout=str(task_dir / "o"),
        stderr=str(task_dir / "e"),
    )
    bg = task_dir / "wd" / "bg"
    deadline = time.monotonic() + 5
    while not (bg.exists() and bg.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    background = psutil.Process(int(bg.read_text()))
    signal_group(child, signal.SIGKILL)
    code, _, _ = reap(child)
    assert code == 137
    background.wait(5)  # raises TimeoutExpired if it survived
    assert not psutil.pid_exists(background.pid) or background.status() == psutil.STATUS_ZOMBIE


def test_the_processes_of_a_dead_agents_node_are_found_by_their_environment(task_dir):
    marker = {"AZ_BATCH_NODE_ID": "ghost-node", "AZ_BATCH_NODE_ROOT_DIR": str(task_dir)}
    env = environment(job_settings=None, task_settings=None, batch=marker)
    other = environment(
        job_settings=None, task_settings=None, batch={**marker, "AZ_BATCH_NODE_ID": "other"}
    )
    mine = spawn(
        ["/bin/sleep", "60"], env=env, cwd=str(task_dir), stdout=os.devnull, stderr=os.devnull
    )
    theirs = spawn(
        ["/bin/sleep", "60"], env=other, cwd=str(task_dir), stdout=os.devnull, stderr=os.devnull
    )
    try:
        assert kill_node_processes("ghost-node", str(task_dir)) == 1
        assert reap(mine)[0] == 137
        assert exit_status(theirs) is None
    finally:
        signal_group(theirs, signal.SIGKILL)
        reap(theirs)
