"""tasks.supervisor: named commands restarted with backoff when they die, stopped cleanly.

The supervisor runs in a subprocess of its own (tests/service/supervise.py), as under
`serve`, so the tests can signal it and its process group like a terminal would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.agents import wait_for

SUPERVISE = Path(__file__).with_name("supervise.py")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Supervised:
    """A supervisor subprocess, leading its own session as a shell's foreground job does."""

    def __init__(self, tmp_path: Path, programs: dict[str, list[str]], **options) -> None:
        self.log_path = tmp_path / "supervisor.log"
        spec = json.dumps({"programs": list(programs.items()), "options": options})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(SUPERVISE), spec],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of(self, name: str) -> int:
        """The pid of the program's running process (from the supervisor's log)."""
        found = re.findall(rf"started {re.escape(name)} \(pid (\d+)\)", self.log())
        return int(found[-1]) if found else 0

    def wait_started(self, name: str, *, times: int = 1, running: bool = True) -> int:
        wait_for(
            lambda: len(re.findall(rf"started {re.escape(name)} \(pid", self.log())) >= times,
            timeout=30,
            message=f"{name} started {times} time(s)\n{self.log()}",
        )
        pid = self.pid_of(name)
        if running:
            wait_for(lambda: alive(pid), message=f"{name} running")
        return pid

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def graceful_program(got: Path) -> list[str]:
    """A command that writes the name of the signal that stops it into `got`."""
    script = (
        "import pathlib, signal, sys, time\n"
        f"got = pathlib.Path({str(got)!r})\n"
        "def stop(signum, frame):\n"
        "    got.write_text(signal.Signals(signum).name); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop); signal.signal(signal.SIGINT, stop)\n"
        "got.with_suffix('.ready').touch()\n"
        "while True: time.sleep(1)\n"
    )
    return [sys.executable, "-c", script]


def ready(got: Path) -> None:
    wait_for(
        lambda: got.with_suffix(".ready").exists(),
        timeout=30,
        message="the program's signal handlers",
    )


@pytest.fixture
def supervised(tmp_path):
    made: list[Supervised] = []

    def start(programs, **options):
        made.append(Supervised(tmp_path, programs, **options))
        return made[-1]

    yield start
    for s in made:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        for child in psutil.Process().children(recursive=True):
            child.kill()


def test_a_program_that_dies_is_restarted_with_a_doubling_delay_while_the_others_keep_running(
    supervised, tmp_path
):
    starts = tmp_path / "starts"
    s = supervised(
        {
            "steady": ["sleep", "1000"],
            "flaky": ["/bin/sh", "-c", f"date +%s.%N >> {starts}; exit 3"],
        },
        backoff=0.2,
        max_backoff=0.8,
        healthy_after=60,
    )
    steady = s.wait_started("steady")
    s.wait_started("flaky", times=5, running=False)

    log = s.log()
    assert re.findall(r"restarting flaky in ([\d.]+) s", log)[:4] == ["0.2", "0.4", "0.8", "0.8"]
    assert "flaky (pid" in log and "exited with status 3" in log
    assert re.search(r"flaky restarted \(pid \d+, restart 4\)", log)
    # Each restart waited at least its delay.
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= delay for gap, delay in zip(gaps, [0.2, 0.4, 0.8, 0.8], strict=False))
    assert s.pid_of("steady") == steady and alive(steady)
    assert "restarting steady" not in log
    assert s.stop() == 0


def test_a_program_that_stayed_up_long_enough_restarts_after_the_first_delay_again(supervised):
    s = supervised({"worker": ["sleep", "1000"]}, backoff=0.2, max_backoff=5, healthy_after=0.5)
    for times in (1, 2, 3):
        pid = s.wait_started("worker", times=times)
        time.sleep(0.6)  # up for longer than healthy_after
        os.kill(pid, signal.SIGKILL)
    s.wait_started("worker", times=4)
    log = s.log()
    assert re.findall(r"restarting worker in ([\d.]+) s", log) == ["0.2", "0.2", "0.2"]
    assert log.count("was killed by SIGKILL") == 3


def test_what_a_dead_program_left_in_its_process_group_is_killed_before_it_starts_again(
    supervised, tmp_path
):
    left = tmp_path / "left"
    s = supervised(
        {"leaky": ["/bin/sh", "-c", f"sleep 1000 & echo $! > {left}; exec sleep 1000"]}, backoff=0.5
    )
    leader = s.wait_started("leaky")
    wait_for(lambda: left.exists() and left.read_text().strip(), message="the background process")
    orphan = int(left.read_text())
    assert alive(orphan)

    os.kill(leader, signal.SIGKILL)
    wait_for(lambda: not alive(orphan), message="the orphan to be killed")
    s.wait_started("leaky", times=2)
    assert f"leaky (pid {leader}) was killed by SIGKILL" in s.log()


def test_sigterm_stops_each_program_with_sigterm_and_kills_one_that_ignores_it(
    supervised, tmp_path
):
    got = tmp_path / "got"
    graceful = graceful_program(got)
    s = supervised(
        {"graceful": graceful, "stubborn": ["/bin/sh", "-c", "trap '' TERM; sleep 1000 & wait"]},
        stop_timeout=1,
    )
    pids = {name: s.wait_started(name) for name in ("graceful", "stubborn")}
    ready(got)
    sleeper = wait_for(
        lambda: psutil.Process(pids["stubborn"]).children(), message="the stubborn sleep"
    )
    stubborn_tree = [pids["stubborn"]] + [p.pid for p in sleeper]

    assert s.stop(signal.SIGTERM) == 0
    assert got.read_text() == "SIGTERM"
    assert not any(alive(pid) for pid in [pids["graceful"], *stubborn_tree])
    assert "killing stubborn" in s.log() and "killing graceful" not in s.log()
    assert "restarting" not in s.log()


def test_ctrl_c_reaches_only_the_supervisor_which_stops_its_programs_without_a_traceback(
    supervised, tmp_path
):
    got = tmp_path / "got"
    graceful = graceful_program(got)
    s = supervised({"graceful": graceful, "other": ["sleep", "1000"]})
    pids = [s.wait_started("graceful"), s.wait_started("other")]
    ready(got)

    os.killpg(s.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the foreground group
    assert s.proc.wait(30) == 0
    assert got.read_text() == "SIGTERM"  # from the supervisor, not the terminal's SIGINT
    assert not any(alive(pid) for pid in pids)
    assert "Traceback" not in s.log() and "KeyboardInterrupt" not in s.log()


def test_a_killed_supervisor_leaves_no_program_running(supervised):
    s = supervised({"one": ["sleep", "1000"], "two": ["sleep", "1000"]})
    pids = [s.wait_started("one"), s.wait_started("two")]
    s.proc.kill()
    s.proc.wait()
    wait_for(
        lambda: not any(alive(pid) for pid in pids),
        message="the programs to get their parent-death signal",
    )


def test_a_program_that_cannot_start_is_retried_with_backoff(supervised, tmp_path):
    s = supervised(
        {"missing": [str(tmp_path / "no-such-program")], "other": ["sleep", "1000"]},
        backoff=0.1,
        max_backoff=0.2,
    )
    s.wait_started("other")
    wait_for(lambda: s.log().count("missing could not start") >= 3, message=f"retries\n{s.log()}")
    assert re.findall(r"restarting missing in ([\d.]+) s", s.log())[:3] == ["0.1", "0.2", "0.2"]
    assert s.stop() == 0


def test_a_second_stop_signal_kills_at_once_what_ignores_sigterm(supervised):
    s = supervised(
        {"stubborn": ["/bin/sh", "-c", "trap '' TERM; sleep 1000 & wait"]}, stop_timeout=600
    )
    pid = s.wait_started("stubborn")
    wait_for(lambda: psutil.Process(pid).children(), message="the stubborn sleep")
    s.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping (SIGTERM)" in s.log(), message="the first stop")
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(60) == 0  # long before the 600 s stop_timeout
    assert "killing stubborn" in s.log() and not alive(pid)
