"""Wake-ups reach the agents they are meant for once the change commits (LISTEN/NOTIFY on
PostgreSQL, a datagram socket on SQLite), and survive a broken listener."""

from __future__ import annotations

import select
import selectors

import pytest
from django.db import connection, transaction

from tasks.models import Attempt
from tasks.node import agent as agent_module
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
        wakeups = Wakeups(
            selector, account_pk=node_.pool.account_id, pool_id=node_.pool.pool_id, node_pk=node_.pk
        )
        wakeups.ensure()
        assert wakeups.listener is not None
        listeners.append(wakeups)
        return wakeups

    yield account, pool, node, other_node, listen
    for wakeups in listeners:
        wakeups.close()
    selector.close()


def woken(wakeups: Wakeups, *, timeout: float = 5.0) -> tuple[bool, bool]:
    """What the listener was asked for (claim work, look at the node), waiting up to
    `timeout` for its first wake-up: on its own descriptor (the selector is shared, and
    PostgreSQL notifies every listener: another's readable socket must not end the wait
    before this one's arrives)."""
    select.select([wakeups.fd], [], [], timeout)
    return wakeups.drain()[:2]


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
    # What was sent meanwhile may be lost: claim and look now (for preparations too).
    assert wakeups.drain() == (True, True, True)
    assert wakeups.listener is None
    wakeups.ensure()
    add(make_job(account, pool), "t1")
    assert woken(wakeups) == (True, False)


# An agent that polls every 60 s: what it does sooner, a wake-up made it do.
SLOW_POLL = {"BATCHSITE_NODE_POLL_SECONDS": "60"}


def test_an_agent_starts_an_added_task_and_kills_a_terminated_one_long_before_its_next_poll(
    agents, settings, tmp_path
):
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
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == Task.State.RUNNING,
        timeout=30,
        message="the task to start",
    )
    terminate_task(Task.objects.get(pk=task.pk))
    wait_for(
        lambda: (
            not Attempt.objects.filter(task_id=task.pk, outcome=Attempt.Outcome.RUNNING).exists()
        ),
        timeout=30,
        message="the agent to end the attempt",
    )
    assert time.monotonic() - started < 60  # both before the poll could have done either


@pytest.fixture
def in_process_agent(transactional_db, settings, tmp_path):
    """An agent of its own pool, listening, with nothing due before the next wake-up."""
    import os
    import time

    from django.db import connection

    from tasks.node.agent import NodeAgent
    from tasks.operations import nodes as node_ops

    settings.DATA_DIR = tmp_path
    pool = make_pool(AccountFactory())
    had = getattr(connection, "writes_first", None)
    agent = NodeAgent(pool, node_id="inproc", slots=1)
    agent.node = node_ops.register_node(pool, node_id="inproc", slots=1, root_dir=str(agent.root))
    agent.accepting = True
    agent.wakeups = Wakeups(
        agent.selector, account_pk=pool.account_id, pool_id=pool.pool_id, node_pk=agent.node.pk
    )
    agent.wakeups.ensure()
    later = time.monotonic() + 600
    agent.next_claim = agent.next_control = agent.next_heartbeat = later
    agent.job_tasks.next_check = later
    wake_r, wake_w = os.pipe()
    yield agent, wake_r
    for run in list(agent.runs.values()):
        agent._kill(run, "shutdown")
    # A job preparation it started too: killed and reaped, not left to end as a zombie
    # of this worker a minute later.
    agent.job_tasks.shutdown()
    agent.wakeups.close()
    os.close(wake_r)
    os.close(wake_w)
    connection.writes_first = had


@pytest.fixture
def steps(in_process_agent, monkeypatch):
    """What the in-process agent does: its claims, and its job tasks' looks (preparations,
    releases)."""
    agent, _ = in_process_agent
    done = []
    claim_work, start_due = agent_module.attempt_ops.claim_work, agent.job_tasks._start_due

    def claiming(*args, **kwargs):
        done.append("claim")
        return claim_work(*args, **kwargs)

    def looking(**kwargs):
        done.append(("job tasks", kwargs.get("preparations", True), kwargs.get("releases", True)))
        start_due(**kwargs)

    monkeypatch.setattr(agent_module.attempt_ops, "claim_work", claiming)
    monkeypatch.setattr(agent.job_tasks, "_start_due", looking)
    return done


def test_a_woken_agent_claims_and_its_job_tasks_do_not_look_for_a_job_without_them(
    in_process_agent, steps
):
    agent, wake_r = in_process_agent
    job = make_job(agent.pool.account, agent.pool)
    task = add(job, "t1", "/bin/sh -c 'exec sleep 60'")
    agent._iterate(wake_r)  # woken by the add
    # Nothing of the job tasks' can be due for tasks of a job without a preparation
    # task: their queries (5-11 % of an agent's time when every add woke them) wait for
    # the next check.
    assert steps == ["claim"]
    assert [run.task_pk for run in agent.runs.values()] == [task.pk]


def test_a_woken_agent_claims_before_its_job_tasks_look_for_a_preparation(in_process_agent, steps):
    agent, wake_r = in_process_agent
    job = make_job(
        agent.pool.account, agent.pool, jobPreparationTask={"commandLine": "/bin/sh -c 'sleep 60'"}
    )
    add(job, "t1", "/bin/sh -c 'exec sleep 60'")
    agent._iterate(wake_r)  # woken by the add
    # The preparations' queries come after the claim and the start they would otherwise
    # delay, in the same pass (the releases' wait: a job's end wakes its nodes for them).
    assert steps == ["claim", ("job tasks", True, False)]
    assert [run.kind for run in agent.job_tasks.runs.values()] == ["preparation"]
    assert agent.runs == {}  # the job's tasks wait for the preparation


def test_a_node_wake_up_has_the_job_tasks_look_for_releases(in_process_agent, steps):
    agent, wake_r = in_process_agent
    job = make_job(agent.pool.account, agent.pool)
    task = add(job, "t1", "/bin/sh -c 'exec sleep 60'")
    agent._iterate(wake_r)
    terminate_task(task.__class__.objects.get(pk=task.pk))  # wakes the node
    agent._iterate(wake_r)  # the kill frees the slot: it claims again too
    assert [step for step in steps if step != "claim"] == [("job tasks", False, True)]


def test_a_kill_walks_the_hosts_processes_for_strays_once(in_process_agent, monkeypatch):
    import psutil

    agent, wake_r = in_process_agent
    job = make_job(agent.pool.account, agent.pool)
    add(job, "t1", "/bin/sh -c 'exec sleep 60'")
    agent._iterate(wake_r)
    (run,) = agent.runs.values()
    pid = run.child.pid
    walks = []
    children = psutil.Process.children

    def walking(self, *args, **kwargs):
        walks.append(self.pid)
        return children(self, *args, **kwargs)

    monkeypatch.setattr(psutil.Process, "children", walking)
    agent._kill(run, "cancel")
    # Reaping the killed command kills its group again, without a second walk of every
    # process on the host (a few milliseconds under load, before the report).
    assert walks == [pid]
    assert not psutil.pid_exists(pid)
    (report,) = agent.reports
    assert report.exit_code == 137  # SIGKILL, as a shell reports it


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="racing agents need PostgreSQL (DATABASE_URL)"
)
def test_agents_woken_by_adds_race_and_run_each_task_exactly_once(agents, tmp_path):
    """Three idle agents, every add (one task, or a collection) waking all of them at once
    (the existing races start their agents after the adds: no wake-up in them)."""
    import time

    from tasks.models import Job
    from tasks.operations.tasks import add_task_collection
    from tests.agents import assert_each_ran_once, logged_spec, wait_for

    account = AccountFactory()
    pool = make_pool(account)
    for node_id in ("woken-1", "woken-2", "woken-3"):
        agents.start(pool, node_id, slots=2)
    job = make_job(account, pool)
    log = tmp_path / "ran"

    for start in range(0, 300, 20):
        if start % 40:
            specs = [logged_spec(i, log) for i in range(start, start + 20)]
            add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
        else:
            for i in range(start, start + 20):
                spec = logged_spec(i, log)
                add(job, spec["id"], spec["commandLine"], userIdentity=spec["userIdentity"])
        time.sleep(0.05)
    wait_for(
        lambda: Job.objects.get(pk=job.pk).completed_count == 300,
        timeout=120,
        interval=0.2,
        message="300 tasks to complete",
    )
    by_node = assert_each_ran_once(job, log, 300)
    assert len(by_node) > 1  # more than one agent won some


def test_the_heartbeat_of_a_start_leaves_the_sample_to_the_regular_beat(
    in_process_agent, monkeypatch
):
    from tasks.models import ComputeNode

    agent, wake_r = in_process_agent
    samples = []
    monkeypatch.setattr(agent.sampler, "sample", lambda: samples.append(1) or (50.0, 1))
    add(make_job(agent.pool.account, agent.pool), "t1", "/bin/sh -c 'exec sleep 60'")
    agent._iterate(wake_r)
    node = ComputeNode.objects.get(pk=agent.node.pk)
    assert node.state == ComputeNode.State.RUNNING  # at once, as before
    # The sample walks every process on the host: not beside the process just started.
    assert samples == []
    agent._heartbeat()
    assert samples == [1]
    assert ComputeNode.objects.get(pk=agent.node.pk).cpu_percent == 50.0
