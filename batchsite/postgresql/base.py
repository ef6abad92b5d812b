"""Django's PostgreSQL backend, with a health check that costs no round trip.

CONN_HEALTH_CHECKS (settings) checks a kept connection before a request reuses it, so
that after a database restart no request fails on a connection the server closed.
Django's check is a `SELECT 1`: one round trip to the server on every request, which
on a busy 2-core machine was a millisecond or more of each Add Task and Terminate Task
(the server's process must be scheduled to answer it).

Between requests a connection is idle: nothing is due from the server on it. A server
that shuts down or ends the session (restart, pg_terminate_backend, idle timeout) sends
an error and closes the socket, which makes the socket readable. So a connection
whose socket has nothing to read, and which is idle, open and not broken, is used as
is; anything else (something to read, a transaction left open) gets Django's own
`SELECT 1`, which decides.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import ConnStatus, TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            pgconn = connection.pgconn
            quiet = (
                pgconn.status == ConnStatus.OK
                and pgconn.transaction_status == TransactionStatus.IDLE
                and not _readable(pgconn.socket)
            )
        except (OSError, ValueError, base.Database.Error):
            quiet = False  # Django's SELECT 1 decides
        return quiet or super().is_usable()


def _readable(fd: int) -> bool:
    # poll, not select: select() refuses descriptors above 1023 (a busy worker's).
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
