"""batchsite.sqlite: every transaction queues on one lock file beside the database."""

import fcntl
import os

import pytest
from django.db import connection, transaction

from tasks.models import Account

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend only"),
]


def lock_is_free(name="writers") -> bool:
    fd = os.open(f"{connection.settings_dict['NAME']}-{name}", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_transaction_holds_the_lock_until_it_commits():
    Account.objects.count()  # connected
    assert lock_is_free()
    with transaction.atomic():
        Account.objects.create(name="a", primary_key="eA==")
        assert not lock_is_free()
    assert lock_is_free()
    assert Account.objects.filter(name="a").exists()


def test_a_rolled_back_transaction_gives_the_lock_back():
    with pytest.raises(RuntimeError), transaction.atomic():
        Account.objects.create(name="b", primary_key="eA==")
        raise RuntimeError
    assert lock_is_free()
    assert not Account.objects.filter(name="b").exists()


def test_statements_outside_a_transaction_do_not_take_it():
    Account.objects.create(name="c", primary_key="eA==")
    assert lock_is_free()


def test_other_writers_queue_first_and_an_agent_does_not():
    Account.objects.count()
    with transaction.atomic():
        Account.objects.create(name="d", primary_key="eA==")
        assert not lock_is_free("queue") and not lock_is_free("writers")
    assert lock_is_free("queue") and lock_is_free("writers")
    connection.writes_first = True
    try:
        with transaction.atomic():
            Account.objects.create(name="e", primary_key="eA==")
            assert lock_is_free("queue") and not lock_is_free("writers")
    finally:
        connection.writes_first = False
    assert lock_is_free("writers")


def test_an_agents_connection_checkpoints_after_its_commits_outside_the_lock(monkeypatch):
    from batchsite.sqlite import base

    seen = []
    monkeypatch.setattr(
        base.DatabaseWrapper, "_checkpoint", lambda self: seen.append(lock_is_free())
    )
    connection.writes_first = True
    try:
        for i in range(base.CHECKPOINT_EVERY * 2):
            with transaction.atomic():
                Account.objects.create(name=f"f{i}", primary_key="eA==")
            if i == 0:
                # SQLite's own checkpoints (inside a commit, under the lock) are off here.
                assert connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    finally:
        connection.writes_first = False
    assert seen == [True, True]  # one per CHECKPOINT_EVERY commits, with the write lock free
    with transaction.atomic():
        Account.objects.create(name="h", primary_key="eA==")
    assert connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_other_connections_keep_sqlites_own_checkpoints():
    with transaction.atomic():
        Account.objects.create(name="g", primary_key="eA==")
    assert connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
