"""batchsite.postgresql: a kept connection's health check costs no round trip, and still
finds a connection the server ended."""

import time

import psycopg
import pytest
from django.db import connection, transaction

from tasks.models import Account

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend only"),
]


def refuse_statements(monkeypatch) -> list[str]:
    """Make every statement on the connection's psycopg connection fail the test."""
    sent: list[str] = []

    def cursor(*args, **kwargs):
        sent.append("cursor")
        raise AssertionError("the health check sent a statement")

    monkeypatch.setattr(connection.connection, "cursor", cursor)
    return sent


def end_session(pid: int) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's FATAL message and the socket's end reach us a moment later.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and connection.is_usable():
        time.sleep(0.01)


def test_an_idle_connection_is_usable_without_a_statement(monkeypatch):
    Account.objects.count()  # connected, and idle again (autocommit)
    sent = refuse_statements(monkeypatch)
    assert connection.is_usable()
    assert sent == []


def test_a_connection_the_server_ended_is_not_usable():
    Account.objects.count()
    end_session(connection.connection.info.backend_pid)
    assert not connection.is_usable()
    # What the next request does: check it, find it ended, connect again.
    connection.close_if_unusable_or_obsolete()
    assert Account.objects.count() == 0


def test_inside_a_transaction_the_check_asks_the_server():
    with transaction.atomic():
        Account.objects.count()
        assert connection.connection.pgconn.transaction_status != 0  # not idle
        assert connection.is_usable()  # Django's own SELECT 1 answered


def test_a_requests_first_hot_path_statement_replaces_a_connection_the_server_ended():
    from tasks import sql

    assert connection.health_check_enabled  # CONN_HEALTH_CHECKS (settings)
    Account.objects.count()
    pid = connection.connection.info.backend_pid
    connection.close_if_unusable_or_obsolete()  # the end of a request: kept
    end_session(pid)  # a restart while it was kept
    connection.close_if_unusable_or_obsolete()  # the next request starts
    # Every API call's first statement (get_account) runs through tasks.sql: it must
    # not fail on the ended connection (a 503 after every database restart).
    rows, _ = sql.run("SELECT 1", [])
    assert rows == [(1,)]
    assert connection.connection.info.backend_pid != pid
