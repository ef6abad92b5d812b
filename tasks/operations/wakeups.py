"""Wake-ups for node agents: a change an agent must act on reaches it at once instead of
at its next poll (which stays, as the safety net for a wake-up lost on the way).

Two kinds: `work` (a pool has new active tasks: its agents claim now; `prepare` when they
are a job's with a preparation task, which the agents' job tasks then look for:
tasks.node.job_tasks) and `node` (a node's running attempts were terminated, deleted,
requeued or handed a subtask, or its job ended: its agent looks now). They are sent when
the transaction that made the change commits, so an agent never looks before the change
is there:

- PostgreSQL: `NOTIFY batchsite_wake` with the payload `work <account pk> <pool id>` (or
  `prepare ...`) or `node <node pk>` (delivered at commit, to every agent on every host,
  which keeps the ones meant for it; tasks.node.wakeup listens).
- SQLite: every agent shares the machine (and the data dir) with the web tier, and
  listens on a UNIX datagram socket in `<data dir>/wake/`, named after its pool and node
  (`<pool key>-<node pk>`); the sender writes a datagram, `work` (`prepare`) or `node`, to
  each socket of the pool (or of the node) after the commit. A socket nobody reads any
  more (its agent died) refuses the datagram, which is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tasks import sql

CHANNEL = "batchsite_wake"
WAKE_DIR = "wake"


def pool_key(account_pk: int, pool_id: str) -> str:
    """A short, file-name-safe key of a pool (pool ids compare case-insensitively)."""
    return hashlib.sha1(f"{account_pk}/{pool_id.lower()}".encode()).hexdigest()[:12]


def socket_dir() -> Path:
    return Path(settings.DATA_DIR) / WAKE_DIR


def socket_path(account_pk: int, pool_id: str, node_pk: int) -> Path:
    return socket_dir() / f"{pool_key(account_pk, pool_id)}-{node_pk}"


def wake_pool(account_pk: int, pool_id: str, *, preparation: bool = True) -> None:
    """The pool's agents claim work now (once the current transaction commits), and look
    for job preparations due unless `preparation` is False (the new tasks' job has no
    preparation task: then nothing else is due for them)."""
    if not pool_id:
        return
    kind = "prepare" if preparation else "work"
    if sql.conn().vendor == "postgresql":
        _notify(f"{kind} {account_pk} {pool_id.lower()}")
    else:
        prefix = pool_key(account_pk, pool_id) + "-"
        _after_commit(
            lambda: _send(kind.encode(), (name for name in _sockets() if name.startswith(prefix)))
        )


def wake_nodes(node_pks: Iterable[int | None]) -> None:
    """These nodes' agents look at their attempts now (once the transaction commits)."""
    pks = sorted({pk for pk in node_pks if pk is not None})
    if not pks:
        return
    if sql.conn().vendor == "postgresql":
        for pk in pks:
            _notify(f"node {pk}")
    else:
        suffixes = tuple(f"-{pk}" for pk in pks)
        _after_commit(
            lambda: _send(b"node", (name for name in _sockets() if name.endswith(suffixes)))
        )


def wake_attempt_nodes(attempts) -> None:
    """The nodes of these attempts (a queryset of them, read before it is changed)."""
    wake_nodes(attempts.values_list("node_id", flat=True).distinct())


def _notify(payload: str) -> None:
    # Transactional: PostgreSQL delivers it when the transaction commits, not before.
    sql.run("SELECT pg_notify(%s, %s)", [CHANNEL, payload])


def _after_commit(send) -> None:
    transaction.on_commit(send)


def _sockets() -> list[str]:
    try:
        return os.listdir(socket_dir())
    except OSError:
        return []


def _send(kind: bytes, names: Iterable[str]) -> None:
    directory = socket_dir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for name in names:
            # Refused (the agent is gone), full (it has wake-ups to read already), or a
            # path too long for a socket: its poll finds the work.
            with contextlib.suppress(OSError):
                s.sendto(kind, str(directory / name))
