"""`manage.py runnode`: what it refuses before it starts a node."""

import pytest
from django.core.management import CommandError, call_command

from tasks.operations.pools import add_pool
from tests.factories import AccountFactory


@pytest.fixture
def pool(transactional_db):
    return add_pool(AccountFactory(name="nodes"), spec={"id": "p1", "vmSize": "local"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "nope", "--account", "nodes"], "has no pool"),
        (["--pool", "p1", "--account", "ghost"], "no Batch account"),
        (["--pool", "p1", "--account", "nodes", "--node-id", "../escape"], "--node-id"),
        (["--pool", "p1", "--account", "nodes", "--slots", "0"], "--slots"),
    ],
)
def test_refuses_what_cannot_make_a_node(pool, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("runnode", *args)


def test_refuses_a_node_id_another_live_agent_on_this_host_runs(pool, agents):
    proc = agents.start(pool, "only-once", slots=1)
    with pytest.raises(CommandError, match=f"already run by process {proc.pid}"):
        call_command("runnode", "--pool", "p1", "--account", "nodes", "--node-id", "only-once")
