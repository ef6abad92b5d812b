"""The task page's "why isn't it running?" and dependency list, and the job page's
blocked filter, as the dashboard renders them (tasks.operations.waiting, tasks.queries.dependencies)."""

import pytest

from tests.execution import add, claim, finish, make_job, make_node, make_pool
from tests.web.conftest import HTMX, job_url, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocked(account):
    """Job `etl` on pool `work` (one node): transform-bad failed with exit 5, load depends on it."""
    pool = make_pool(account, "work")
    node = make_node(pool, slots=1)
    job = make_job(account, pool, "etl", usesTaskDependencies=True)
    add(job, "transform-bad", "exit 5")
    [attempt] = claim(node)
    finish(attempt, 5)
    add(job, "extract")
    return add(job, "load", dependsOn={"taskIds": ["transform-bad", "extract"]})


def test_a_task_blocked_by_a_failed_dependency_says_so_and_links_it(op, blocked):
    for headers in ({}, HTMX):
        body = op.get(task_url("task", blocked), headers=headers).content.decode()
        waiting = body.split('id="task-waiting"')[1].split("</div>")[0]
        assert 'data-waiting="dependency_failed"' in body and "Will not run" in waiting
        assert "transform-bad failed with exit code 5" in waiting
        assert task_url("task", blocked).replace("load", "transform-bad") in waiting
        assert "waits for a free slot" not in body
        rows = body.split('id="dependency-list"')[1].split("</table>")[0]
        assert 'data-dependency="transform-bad"' in rows and "failed: blocks" in rows
        assert 'data-dependency="extract"' in rows and "state-active" in rows
        assert '"taskIds"' not in body  # not raw JSON


def test_a_task_in_a_pool_without_nodes_names_the_pool(op, account):
    pool = make_pool(account, "gpu-pool")
    task = add(make_job(account, pool), "t1")
    body = op.get(task_url("task", task)).content.decode()
    assert 'data-waiting="no_nodes"' in body and "Pool gpu-pool has no nodes" in body


def test_a_running_task_has_no_waiting_reason(op, account):
    pool = make_pool(account)
    node = make_node(pool)
    task = add(make_job(account, pool), "t1")
    claim(node)
    assert 'id="task-waiting"' not in op.get(task_url("task", task)).content.decode()


def test_the_blocked_filter_on_the_job_page_lists_only_blocked_tasks(op, blocked):
    job = blocked.job
    body = op.get(job_url("job", job)).content.decode()
    assert 'id="filter-blocked"' in body
    filtered = op.get(job_url("job", job, blocked="1")).content.decode()
    listed = filtered.split("<tbody")[1].split("</tbody>")[0]
    assert "/load" in listed and "/extract" not in listed and "/transform-bad" not in listed
    assert "1 task matches" in op.get(job_url("job-count", job, blocked="1")).content.decode()
