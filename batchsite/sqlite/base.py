"""Django's SQLite backend, with a queue for the write lock across processes.

SQLite lets one writer in at a time. A writer that finds the lock taken sleeps and
retries (1, 2, 5, 10 ... 100 ms), so under steady writes from several processes (the
web workers adding tasks, every node agent reporting and claiming) a waiter can lose
races for a long time while the lock is free half of it. Here every transaction (BEGIN
IMMEDIATE, as settings ask) first takes an exclusive lock on a file beside the database
and gives it back when it commits or rolls back: waiters block in the kernel and one
wakes the moment the lock is free.

Node agents set `writes_first` on their connection. Their transactions are short (report
and claim, about a millisecond) and keep the pool's slots busy; a web request may add 100
tasks. Every other writer first queues on a second lock, so at most one of them waits for
the write lock beside the agents, and an agent never waits behind a queue of requests:
without it the agents stood nearly idle while a client added 5,000 tasks.

Measured with benchmarks/bench_task_throughput.py (2 agents, 2 CPUs): SQLite's busy
handler 700-800 tasks/s, one queue for all 850-910, agents first 910-980.

Checkpoints (copying the write-ahead log into the database, with two fsyncs) run inside
the commit that crosses SQLite's threshold, so the write lock was held for ~5 ms every
~40 agent transactions. An agent's connection checkpoints instead after its commit,
outside the lock, every CHECKPOINT_EVERY commits; SQLite does not need the write lock
for that, so the other agents carry on. Other connections keep SQLite's automatic
checkpoints (which bound the log whether or not agents run).

Statements outside a transaction (autocommit) do not queue; they keep SQLite's own
busy handler and timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from django.db.backends.sqlite3 import base

CHECKPOINT_EVERY = 32  # commits of an agent's connection


class DatabaseWrapper(base.DatabaseWrapper):
    writes_first = False  # set on a node agent's connection
    _locks: tuple[int, int] | None = None  # (the others' queue, the write lock), per connection
    _held: tuple[int, ...] = ()
    _commits = (
        0  # since this agent connection's last checkpoint; -1: automatic checkpoints still on
    )

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db() and self._locks is None:
            path = conn_params["database"]
            self._locks = tuple(
                os.open(f"{path}-{name}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                for name in ("queue", "writers")
            )
        self._commits = -1
        return connection

    def _start_transaction_under_autocommit(self):
        if self._locks is not None and self.writes_first != (self._commits >= 0):
            # An agent's connection checkpoints itself (_commit); others leave it to SQLite.
            self.connection.execute(
                f"PRAGMA wal_autocheckpoint={0 if self.writes_first else 1000}"
            ).close()
            self._commits = 0 if self.writes_first else -1
        if self._locks is not None:
            for fd in self._locks[1:] if self.writes_first else self._locks:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    self._give_back()
                    raise
                self._held += (fd,)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._give_back()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._give_back()
            if self._commits >= 0:
                self._commits += 1
                if self._commits >= CHECKPOINT_EVERY:
                    self._commits = 0
                    self._checkpoint()

    def _checkpoint(self):
        """Copy what the log holds into the database as far as no reader needs it; never
        waits (another connection's checkpoint running means this one is not needed)."""
        with contextlib.suppress(base.Database.Error):
            self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._give_back()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self._locks is not None:
                for fd in self._locks:
                    with contextlib.suppress(OSError):
                        os.close(fd)  # closing releases a lock too
                self._locks, self._held = None, ()

    def _give_back(self):
        for fd in reversed(self._held):
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._held = ()
