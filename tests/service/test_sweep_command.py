"""`manage.py sweep`: a database error does not end it, and Ctrl-C/SIGTERM stop it quietly."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection

from tests.agents import ROOT, database_url, wait_for


class DatabaseGoesAwayOnce:
    """The first statement fails as on a connection whose server restarted; once a whole
    pass has run after it, stop the sweep as `serve` would (SIGTERM)."""

    def __init__(self, out: io.StringIO) -> None:
        self.out, self.failed = out, False

    def __call__(self, execute, sql, params, many, context):
        if not self.failed:
            self.failed = True
            raise OperationalError("terminating connection due to administrator command")
        if "sweep: " in self.out.getvalue():
            os.kill(os.getpid(), signal.SIGTERM)
        return execute(sql, params, many, context)


def test_a_database_error_does_not_end_the_sweep_which_tries_again(transactional_db, caplog):
    out = io.StringIO()
    previous = signal.getsignal(signal.SIGTERM)
    with (
        caplog.at_level(logging.WARNING, logger="batchsite.sweep"),
        connection.execute_wrapper(DatabaseGoesAwayOnce(out)),
    ):
        call_command("sweep", "--interval", "0.05", verbosity=2, stdout=out)
    assert "sweep: database error, trying again" in caplog.text
    assert "terminating connection due to administrator command" in caplog.text
    assert "expired=0 purged_jobs=0" in out.getvalue()  # a whole pass after the error
    assert signal.getsignal(signal.SIGTERM) is previous  # SIGTERM ended it; its handler is gone


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_the_sweep_quietly(transactional_db, tmp_path, sig):
    out = tmp_path / "out"
    env = {**os.environ, "DATABASE_URL": database_url()}
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "sweep", "--interval", "0.2", "-v", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: b"sweep: " in out.read_bytes() or proc.poll() is not None,
            timeout=60,
            message="a first sweep",
        )
        proc.send_signal(sig)
        assert proc.wait(30) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
