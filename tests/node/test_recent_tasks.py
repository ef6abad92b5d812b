"""The reads a node's Batch view needs beside its row: recentTasks, nodeAgentInfo."""

import pytest

from tasks.nodehost import AGENT_VERSION
from tasks.queries.nodes import list_recent_node_tasks
from tests.execution import add, claim, finish, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


def test_recent_tasks_are_the_nodes_latest_attempts_newest_first_in_one_query(
    account, django_assert_num_queries
):
    pool = make_pool(account)
    node, other = make_node(pool, "n1"), make_node(pool, "n2")
    job = make_job(account, pool)
    for i in range(3):
        add(job, f"t{i}")
        [attempt] = claim(node, limit=1)
        finish(attempt, 0)
    add(job, "elsewhere")
    claim(other)
    with django_assert_num_queries(1):
        recent = list_recent_node_tasks(node, limit=2)
        ids = [(a.job.job_id, a.task.task_id, a.task.state) for a in recent]
    assert ids == [(job.job_id, "t2", "completed"), (job.job_id, "t1", "completed")]


def test_the_agent_version_is_batchsites():
    assert AGENT_VERSION and AGENT_VERSION[0].isdigit()
