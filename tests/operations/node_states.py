"""Nodes in every state a node action can meet, for the can_*/operation agreement tests."""

from datetime import timedelta

from django.utils import timezone

from tasks.models import ComputeNode, Pool
from tests.factories import ComputeNodeFactory, PoolFactory


def node_situations():
    """(label, keyword arguments of ComputeNodeFactory) for every state, alive and dead,
    scheduling enabled and disabled, asked to leave or not, in a pool deleted or not."""
    stale = timezone.now() - timedelta(hours=1)
    for state in ComputeNode.State.values:
        for enabled in (True, False):
            for dead in (False, True):
                for pending in ("", "reboot", "remove"):
                    yield (
                        f"{state}/{'enabled' if enabled else 'disabled'}/{'dead' if dead else 'alive'}/{pending}",
                        {
                            "state": state,
                            "scheduling_enabled": enabled,
                            "pending_action": pending,
                            **({"last_heartbeat": stale} if dead else {"agent_pid": 4242}),
                        },
                    )


def make_situation(kwargs: dict, *, deleting: bool = False) -> ComputeNode:
    pool = PoolFactory(state=Pool.State.DELETING if deleting else Pool.State.ACTIVE)
    return ComputeNodeFactory(pool=pool, **kwargs)
