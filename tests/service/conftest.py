"""Fixtures for tests of the running service: a real `manage.py serve` in a data dir of its
own, with its own SQLite database (copied from one migrated once per session)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.service.live import Serve, clean_environment, manage


@pytest.fixture(scope="session")
def migrated():
    """A data dir with a migrated SQLite database, made once for the session."""
    base = Path(tempfile.mkdtemp(prefix="bs-serve-"))
    env = clean_environment()
    manage("migrate", "--noinput", "-v0", env={**env, "BATCHSITE_DATA_DIR": str(base)})
    yield base, env
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh(migrated):
    """A new data dir holding a copy of the migrated database; the `serve`s started in it
    are stopped at the end."""
    base, env = migrated
    # Short paths: gunicorn's control socket lives in the data dir (AF_UNIX paths < 108 bytes).
    data_dir = Path(tempfile.mkdtemp(prefix="bs-"))
    shutil.copy(base / "batchsite.sqlite3", data_dir / "batchsite.sqlite3")
    serves: list[Serve] = []

    # HOME in the data dir, no XDG_RUNTIME_DIR: gunicorn's shared default control socket
    # would be made under data_dir/home.
    env = {k: v for k, v in env.items() if k != "XDG_RUNTIME_DIR"}

    def start(**kw) -> Serve:
        serves.append(
            Serve(data_dir, env={**env, "HOME": str(data_dir / "home"), **kw.pop("env", {})}, **kw)
        )
        return serves[-1]

    yield start
    for serve in serves:
        serve.close()
    shutil.rmtree(data_dir, ignore_errors=True)
