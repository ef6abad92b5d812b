"""taskSchedulingPolicy.nodeFillType with real agents: two 4-slot nodes, four tasks."""

from __future__ import annotations

from collections import Counter

import pytest

from tasks.models import Task
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, make_job
from tests.factories import AccountFactory


@pytest.mark.parametrize(("fill", "expected"), [("spread", [2, 2]), ("pack", [4])])
def test_four_tasks_on_two_idle_nodes(agents, transactional_db, fill, expected):
    pool = add_pool(
        AccountFactory(),
        spec={
            "id": f"fill-{fill}",
            "vmSize": "local",
            "taskSchedulingPolicy": {"nodeFillType": fill},
        },
    )
    agents.start(pool, "n1", slots=4)
    agents.start(pool, "n2", slots=4)
    job = make_job(pool.account, pool)
    tasks = [add(job, f"t{i}", "/bin/sh -c 'sleep 2'") for i in range(4)]
    wait_for(
        lambda: Task.objects.filter(job=job, state=Task.State.COMPLETED).count() == 4,
        timeout=30,
        message="the four tasks",
    )
    per_node = Counter(
        Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("node_name", flat=True)
    )
    assert sorted(per_node.values(), reverse=True) == expected, per_node
