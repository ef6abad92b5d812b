"""A database that cannot be reached (restarting, failing over, a dropped connection) makes
the API unavailable for now, not broken: 503 ServerBusy, which both SDKs and the CLI retry,
with a one-line warning instead of a traceback. Found by the soak run's PostgreSQL restart
(benchmarks/soak.py), whose requests got 500 InternalError meanwhile."""

from __future__ import annotations

import logging

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError

from tasks.api import auth
from tests.conftest import error_code


def _failing(exc):
    def lookup(*args, **kwargs):
        raise exc

    return lookup


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("connection failed: FATAL:  the database system is shutting down"),
        OperationalError("consuming input failed: server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
    ],
)
def test_an_unreachable_database_is_server_busy_not_an_internal_error(
    batch, job, monkeypatch, caplog, exc
):
    monkeypatch.setattr(auth, "get_account", _failing(exc))
    with caplog.at_level(logging.WARNING, logger="tasks.api.errors"):
        response = batch.get(f"/jobs/{job.job_id}")
    assert response.status_code == 503, response.content
    assert error_code(response) == "ServerBusy"
    assert [r.exc_info for r in caplog.records if r.name == "tasks.api.errors"] == [
        None
    ]  # no traceback


def test_any_other_database_error_is_still_an_internal_error(batch, job, monkeypatch):
    monkeypatch.setattr(auth, "get_account", _failing(IntegrityError("a bug, not an outage")))
    response = batch.get(f"/jobs/{job.job_id}")
    assert response.status_code == 500 and error_code(response) == "InternalError"
