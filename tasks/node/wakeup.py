"""The agent's end of the wake-ups (tasks.operations.wakeups): a file descriptor its loop
waits on beside its task processes, readable when the web tier (or another agent) asks
it to claim work or to look at its attempts now.

On PostgreSQL a connection of its own that LISTENs (autocommit, nothing else runs on
it); on SQLite a UNIX datagram socket in the data dir. Either may fail or break (the
database restarts, the path is too long for a socket): the agent then runs on its poll
alone, and `ensure()`, called at every heartbeat, opens it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
from typing import NamedTuple

from django.db import connection

from tasks.operations import wakeups

log = logging.getLogger("batchsite.node")

WAKEUP = "wakeup"  # the selector's data for the wake-up descriptor


class Woken(NamedTuple):
    """What the wake-ups since the last drain ask for."""

    work: bool  # claim work (new active tasks in the pool)
    node: bool  # look at the node's attempts
    preparation: bool  # the work is a job's with a preparation task (work too)


class Wakeups:
    def __init__(self, selector, *, account_pk: int, pool_id: str, node_pk: int) -> None:
        self.selector = selector
        self.pool = (account_pk, pool_id.lower())
        self.work_payload = f"work {account_pk} {pool_id.lower()}"
        self.prepare_payload = f"prepare {account_pk} {pool_id.lower()}"
        self.node_payload = f"node {node_pk}"
        self.path = str(wakeups.socket_path(account_pk, pool_id, node_pk))
        self.listener = None  # a psycopg connection, or a socket
        self.fd: int | None = None

    def ensure(self) -> None:
        """Open the listener if it is not (first call, or after it broke)."""
        if self.listener is not None:
            return
        try:
            if connection.vendor == "postgresql":
                self.listener = self._listen()
                self.fd = self.listener.pgconn.socket
            else:
                self.listener = self._bind()
                self.fd = self.listener.fileno()
            self.selector.register(self.fd, selectors.EVENT_READ, WAKEUP)
        except Exception as e:  # noqa: BLE001 - without wake-ups the poll still finds the work
            log.warning("wake-ups unavailable, polling only: %s", e)
            self.close()

    def drain(self) -> Woken:
        """What the wake-ups since the last call ask for."""
        work = node = preparation = False
        if self.listener is None:
            return Woken(work, node, preparation)
        try:
            if connection.vendor == "postgresql":
                pgconn = self.listener.pgconn
                pgconn.consume_input()
                while (n := pgconn.notifies()) is not None:
                    payload = n.extra.decode()
                    preparation = preparation or payload == self.prepare_payload
                    work = work or payload == self.work_payload or preparation
                    node = node or payload == self.node_payload
                if pgconn.status != 0:  # CONNECTION_OK
                    raise ConnectionError("the listening connection is closed")
            else:
                while True:
                    try:
                        kind = self.listener.recv(16)
                    except BlockingIOError:
                        break
                    preparation = preparation or kind == b"prepare"
                    work = work or kind == b"work" or preparation
                    node = node or kind == b"node"
        except Exception as e:  # noqa: BLE001 - the database went away: listen again at the next heartbeat
            log.warning("wake-ups lost, polling until they are back: %s", e)
            self.close()
            # What was sent meanwhile may be lost: look at everything now.
            return Woken(True, True, True)
        return Woken(work, node, preparation)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.fd)
        if self.listener is not None:
            with contextlib.suppress(Exception):
                self.listener.close()
            if connection.vendor != "postgresql":
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        self.listener, self.fd = None, None

    def _listen(self):
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.setdefault("connect_timeout", 5)  # a server that is down must not hold the loop
        listener = psycopg.connect(**params, autocommit=True)
        try:
            listener.execute(f"LISTEN {wakeups.CHANNEL}")
        except Exception:
            listener.close()
            raise
        return listener

    def _bind(self) -> socket.socket:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a previous run of this node's
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind(self.path)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        return s
