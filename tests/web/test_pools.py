"""The nodes page: each pool's nodes with state, slots in use and running tasks."""

import pytest
from django.urls import reverse

from tests.factories import AttemptFactory, ComputeNodeFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account, job):
    pool = PoolFactory(account=account, pool_id="local")
    busy = ComputeNodeFactory(pool=pool, node_id="busy", state="running", slots=4)
    ComputeNodeFactory(pool=pool, node_id="idle")
    for i in range(2):
        task = TaskFactory(job=job, task_id=f"r{i}", running=True)
        AttemptFactory(task=task, node=busy, outcome="running", end_time=None, slots=1 + i)
    AttemptFactory(task=TaskFactory(job=job, task_id="old"), node=busy, outcome="failed", exit_code=3)
    return pool


def test_shows_slots_in_use_and_running_tasks_per_node(op, account, pool):
    body = op.get(reverse("web:pools", args=[account.name])).content.decode()
    busy = body.split('data-node="busy"')[1].split("</tr>")[0]
    assert "3 / 4" in busy and ">r0<" not in busy and "/r0</a>" in busy and "/r1</a>" in busy
    assert "idle</span>" in body.split('data-node="idle"')[1]


def test_costs_a_fixed_number_of_queries(op, account, pool, django_assert_num_queries):
    ComputeNodeFactory.create_batch(5, pool=pool)
    # session, user, membership, pools, nodes, running attempts
    with django_assert_num_queries(6):
        op.get(reverse("web:pools", args=[account.name]))


def test_node_page_shows_what_runs_now_and_what_ran(op, account, pool):
    body = op.get(reverse("web:node", args=[account.name, "local", "busy"])).content.decode()
    assert "3 / 4" in body and "outcome-failed" in body and "/tasks/r1/" in body


def test_node_page_costs_a_fixed_number_of_queries(op, account, pool, django_assert_num_queries):
    # session, user, membership, pool, node, running, recent
    with django_assert_num_queries(7):
        op.get(reverse("web:node", args=[account.name, "local", "busy"]))


def test_unknown_node_is_not_found(op, account, pool):
    assert op.get(reverse("web:node", args=[account.name, "local", "nope"])).status_code == 404
