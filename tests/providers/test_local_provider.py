"""The `local` provider with real `runnode` agents against the test database."""

import os
import signal

import psutil
import pytest

from tasks.models import ComputeNode
from tasks.operations.pools import add_pool
from tasks.providers.base import NodeLaunch
from tasks.providers.local import LocalProvider
from tests.agents import FAST, wait_for
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(name="prov"), spec={"id": "Lp", "vmSize": "local"})


def launch(pool, node_id: str, **kw) -> NodeLaunch:
    return NodeLaunch(
        account=pool.account.name, pool_id=pool.pool_id, node_id=node_id, slots=2, **kw
    )


def registered(pool, node_id: str, state: str = "idle"):
    return lambda: ComputeNode.objects.filter(pool=pool, node_id=node_id, state=state).first()


def test_a_started_agent_registers_and_is_listed_by_a_fresh_provider(local_provider, pool):
    handle = local_provider.start(launch(pool, "n1"))
    node = wait_for(registered(pool, "n1"), timeout=30, message="n1 idle")
    assert handle == f"local:{node.agent_pid}" and node.slots == 2
    for provider in (
        local_provider,
        LocalProvider(),
    ):  # a fresh one reads the process table, not memory
        assert [
            (r.account, r.pool_id, r.node_id, r.handle, r.pending) for r in provider.running()
        ] == [("prov", "Lp", "n1", handle, False)]
    assert psutil.Process(node.agent_pid).ppid() == os.getpid()
    assert os.getsid(node.agent_pid) == node.agent_pid  # its own session: Ctrl-C does not reach it


def test_start_is_idempotent_for_a_running_node(local_provider, pool):
    first = local_provider.start(launch(pool, "n1"))
    wait_for(registered(pool, "n1"), timeout=30)
    assert local_provider.start(launch(pool, "n1")) == first
    assert len(local_provider.running()) == 1


def test_a_graceful_stop_takes_the_node_offline(local_provider, pool):
    handle = local_provider.start(launch(pool, "n1"))
    wait_for(registered(pool, "n1"), timeout=30)
    local_provider.stop(handle, graceful=True)
    wait_for(lambda: not local_provider.running(), timeout=20, message="the agent to exit")
    assert ComputeNode.objects.get(pool=pool, node_id="n1").state == "offline"


def test_a_hard_stop_kills_the_agent(local_provider, pool):
    handle = local_provider.start(launch(pool, "n1"))
    node = wait_for(registered(pool, "n1"), timeout=30)
    local_provider.stop(handle, graceful=False)
    wait_for(
        lambda: (
            not psutil.pid_exists(node.agent_pid)
            or psutil.Process(node.agent_pid).status() == "zombie"
        ),
        timeout=10,
        message="the agent to die",
    )
    assert ComputeNode.objects.get(pk=node.pk).state == "idle"  # it had no chance to say so
    assert local_provider.running() == []


def test_stopping_a_handle_that_is_gone_or_not_ours_does_nothing(local_provider, pool, agents):
    stranger = agents.start(pool, "by-hand")
    local_provider.stop(f"local:{stranger.pid}", graceful=False)
    local_provider.stop("local:999999999", graceful=True)
    local_provider.stop("slurm:12", graceful=True)
    assert stranger.poll() is None
    assert local_provider.running() == []  # an agent started by hand is not the provider's


def test_an_agent_outlives_the_provider_object_and_is_stopped_by_another(local_provider, pool):
    handle = local_provider.start(launch(pool, "n1"))
    wait_for(registered(pool, "n1"), timeout=30)
    other = LocalProvider()
    other.stop(handle, graceful=True)
    wait_for(lambda: not other.running(), timeout=20, message="the agent to exit")


def test_agents_get_the_test_database_and_short_intervals(local_provider, pool):
    local_provider.start(launch(pool, "n1"))
    node = wait_for(registered(pool, "n1"), timeout=30)
    env = psutil.Process(node.agent_pid).environ()
    assert env["BATCHSITE_NODE_POLL_SECONDS"] == FAST["BATCHSITE_NODE_POLL_SECONDS"]
    assert "test" in env["DATABASE_URL"]


def test_sigterm_reaches_only_the_agent(local_provider, pool):
    handle = local_provider.start(launch(pool, "n1"))
    node = wait_for(registered(pool, "n1"), timeout=30)
    os.kill(node.agent_pid, signal.SIGTERM)
    wait_for(lambda: not local_provider.running(), timeout=20)
    assert handle == f"local:{node.agent_pid}"
