"""heartbeat_node: the states a heartbeat keeps up to date and those it leaves alone, the
CPU and memory samples."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import ComputeNode
from tasks.operations.nodes import (
    disable_node_scheduling,
    heartbeat_node,
    stop_node,
)
from tasks.operations.pool_nodes import stopped_agents
from tests.execution import make_node, make_pool
from tests.factories import ComputeNodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


def test_stores_the_cpu_and_memory_samples(pool):
    node = make_node(pool)
    heartbeat_node(node, running=False, cpu_percent=42.5, memory_bytes=123456789)
    node.refresh_from_db()
    assert (node.cpu_percent, node.memory_bytes) == (42.5, 123456789)
    heartbeat_node(node, running=False)  # no new sample: the latest stays
    node.refresh_from_db()
    assert node.cpu_percent == 42.5


@pytest.mark.parametrize(
    "state",
    [
        "starting",
        "waitingforstarttask",
        "starttaskfailed",
        "rebooting",
        "reimaging",
        "leavingpool",
        "unusable",
        "creating",
    ],
)
def test_leaves_a_state_an_operation_set_alone(pool, state):
    node = ComputeNodeFactory(pool=pool, state=state)
    assert heartbeat_node(node, running=True).state == state
    assert ComputeNode.objects.get(pk=node.pk).state == state


def test_a_node_with_scheduling_disabled_that_runs_nothing_is_offline(pool):
    node = ComputeNodeFactory(pool=pool, state="running", scheduling_enabled=False)
    assert heartbeat_node(node, running=True).state == "running"
    assert heartbeat_node(node, running=False).state == "offline"


def test_a_node_marked_offline_whose_agent_comes_back_is_idle(pool):
    node = ComputeNodeFactory(pool=pool, state="offline")
    assert heartbeat_node(node, running=False).state == "idle"


def test_stopped_agents_are_the_stopped_and_the_silent_not_a_disabled_node_that_runs_nothing(pool):
    disabled, stopped, silent = (
        make_node(pool, "disabled"),
        make_node(pool, "stopped"),
        make_node(pool, "silent"),
    )
    ComputeNode.objects.filter(pool=pool).update(agent_pid=4242)  # what a registering agent gives
    disable_node_scheduling(disabled)
    stop_node(stopped)
    ComputeNode.objects.filter(pk=silent.pk).update(
        last_heartbeat=timezone.now() - timedelta(minutes=5)
    )
    assert ComputeNode.objects.get(pk=disabled.pk).state == ComputeNode.State.OFFLINE
    gone = set(
        ComputeNode.objects.filter(stopped_agents(lost_after=timedelta(seconds=30))).values_list(
            "node_id", flat=True
        )
    )
    assert gone == {"stopped", "silent"}
    assert ComputeNode.objects.get(pk=stopped.pk).agent_pid is None
