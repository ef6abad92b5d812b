"""Wake-ups reach the agents they are meant for once the change commits (LISTEN/NOTIFY on
PostgreSQL, a datagram socket on SQLite), and survive a broken listener."""

from __future__ import annotations

import selectors

import pytest
from django.db import transaction

from tasks.models import Attempt
from tasks.node.wakeup import Wakeups
from tasks.operations.tasks import delete_task, terminate_task
from tests.execution import add, claim, make_job, make_node, make_pool
from tests.factories import AccountFactory


@pytest.fixture
def setup(transactional_db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    account = AccountFactory()
    pool = make_pool(account)
    node = make_node(pool, slots=4)
    other = make_pool(account, "pool2")
    other_node = make_node(other, "node-9")
    selector = selectors.DefaultSelector()
    listeners = []

    def listen(node_):
        wakeups = Wakeups(selector, account_pk=node_.pool.account_id, pool_id=node_.pool.pool_id, node_pk=node_.pk)
        wakeups.ensure()
        assert wakeups.listener is not None
        listeners.append(wakeups)
        return wakeups

    yield account, pool, node, other_node, listen
    for wakeups in listeners:
        wakeups.close()
    selector.close()


def woken(wakeups: Wakeups, *, timeout: float = 5.0) -> tuple[bool, bool]:
    """What the listener was asked for, waiting up to `timeout` for the first wake-up."""
    wakeups.selector.select(timeout)
    return wakeups.drain()


def test_adding_tasks_wakes_the_agents_of_the_jobs_pool_to_claim(setup):
    account, pool, node, other_node, listen = setup
    mine, theirs = listen(node), listen(other_node)
    job = make_job(account, pool)
    add(job, "t1")
    assert woken(mine) == (True, False)
    assert woken(theirs, timeout=0.3) == (False, False)  # another pool's agent sleeps on


def test_nothing_wakes_before_the_transaction_commits(setup):
    account, pool, node, _, listen = setup
    wakeups = listen(node)
    job = make_job(account, pool)
    with transaction.atomic():
        add(job, "t1")
        assert woken(wakeups, timeout=0.3) == (False, False)
    assert woken(wakeups) == (True, False)


def test_terminating_or_deleting_a_running_task_wakes_its_node_to_look(setup):
    account, pool, node, _, listen = setup
    job = make_job(account, pool)
    first, second = add(job, "t1"), add(job, "t2")
    claim(node)
    wakeups = listen(node)
    terminate_task(first)
    assert woken(wakeups) == (False, True)
    delete_task(second)
    assert woken(wakeups) == (False, True)


def test_a_broken_listener_asks_for_a_look_and_listens_again_when_ensured(setup):
    account, pool, node, _, listen = setup
    wakeups = listen(node)
    # The database restarted, or the socket went: the next drain finds it broken.
    wakeups.listener.close()
    assert wakeups.drain() == (True, True)  # what was sent meanwhile may be lost: look now
    assert wakeups.listener is None
    wakeups.ensure()
    add(make_job(account, pool), "t1")
    assert woken(wakeups) == (True, False)


# An agent that polls every 60 s: what it does sooner, a wake-up made it do.
SLOW_POLL = {"BATCHSITE_NODE_POLL_SECONDS": "60"}


def test_an_agent_starts_an_added_task_and_kills_a_terminated_one_long_before_its_next_poll(agents, settings, tmp_path):
    import time

    from tasks.models import Task
    from tests.agents import wait_for

    account = AccountFactory()
    pool = make_pool(account)
    agents.start(pool, "sleepy", slots=1, **SLOW_POLL)
    time.sleep(1.0)  # past its first claim at boot: the next is a poll away
    job = make_job(account, pool)
    task = add(job, "t1", "/bin/sh -c 'exec sleep 120'")
    started = time.monotonic()
    wait_for(lambda: Task.objects.get(pk=task.pk).state == Task.State.RUNNING, timeout=30,
             message="the task to start")
    terminate_task(Task.objects.get(pk=task.pk))
    wait_for(lambda: not Attempt.objects.filter(task_id=task.pk, outcome=Attempt.Outcome.RUNNING).exists(),
             timeout=30, message="the agent to end the attempt")
    assert time.monotonic() - started < 60  # both before the poll could have done either
