"""tasks.sql's statements go to the driver's connection directly, past Django's cursor: they
must still get Django's check of a kept connection (CONN_HEALTH_CHECKS, on PostgreSQL), or
the first request a web worker serves after a database restart fails on the connection the
server closed (503 ServerBusy: tests/service/test_postgres_restart.py saw it)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.core.signals import request_started
from django.db import connection

from tasks import sql

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_request_on_a_kept_connection_the_server_closed_reconnects_before_a_hot_path_statement():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to close a connection")
    [(pid,)], _ = sql.run("SELECT pg_backend_pid()", [])
    connection.health_check_enabled = True  # as settings.py has it for PostgreSQL
    connection.close_at = None  # a kept connection (CONN_MAX_AGE), not one closed per request
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        # pg_terminate_backend only signals it: wait until the session has ended (its
        # error sent first), as one that a restart closed between two requests has.
        deadline = time.monotonic() + 10
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the session did not end"
            time.sleep(0.01)
    request_started.send(sender=None)  # the next request begins on the kept connection

    [(again,)], _ = sql.run("SELECT pg_backend_pid()", [])
    assert again != pid
