"""The audit trail: operators read who did what, when, to which tasks, and how it ended."""

import pytest
from django.urls import reverse

from tasks.operations.audit import record_action
from tests.factories import AccountFactory, TaskFactory
from tests.web.conftest import task_url

pytestmark = pytest.mark.django_db


def test_operators_read_every_action_newest_first(op, operator, job):
    failed, done = TaskFactory(job=job, failed=True), TaskFactory(job=job, succeeded=True)
    op.post(task_url("task-reactivate", failed))
    op.post(task_url("task-reactivate", done))
    body = op.get(reverse("web:audit")).content.decode()
    assert body.index("refused TaskSucceeded") < body.index(failed.task_id + "</a></td>")
    assert operator.username in body


def test_viewers_and_other_accounts_read_nothing(view, op, job):
    record_action(
        job.account, user=None, actor="someone", action="terminate", scope={"job": "j"}, outcome={}
    )
    record_action(
        AccountFactory(), user=None, actor="elsewhere", action="delete", scope={}, outcome={}
    )
    assert "No records you may read." in view.get(reverse("web:audit")).content.decode()
    body = op.get(reverse("web:audit")).content.decode()
    assert "someone" in body and "elsewhere" not in body


def test_costs_a_fixed_number_of_queries(op, job, django_assert_num_queries):
    for i in range(20):
        record_action(
            job.account, user=None, actor=f"a{i}", action="terminate", scope={}, outcome={}
        )
    # session, user, records (accounts joined)
    with django_assert_num_queries(3):
        op.get(reverse("web:audit"))


def test_each_record_links_the_pool_nodes_job_and_tasks_it_acted_on(op, job):
    account = job.account.name
    record_action(
        job.account,
        user=None,
        actor="olive",
        action="node-reboot",
        scope={"pool": "farm", "nodes": ["n1"], "option": "requeue"},
        outcome={},
    )
    record_action(
        job.account,
        user=None,
        actor="olive",
        action="terminate",
        scope={"job": job.job_id, "tasks": ["t1"]},
        outcome={},
    )
    body = op.get(reverse("web:audit")).content.decode()
    assert f'<a href="{reverse("web:pool", args=[account, "farm"])}">farm</a>' in body
    assert f'<a href="{reverse("web:node", args=[account, "farm", "n1"])}">n1</a>' in body
    assert f'<a href="{reverse("web:task", args=[account, job.job_id, "t1"])}">t1</a>' in body


def test_filters_by_who_what_and_job_and_pages_within_the_filter(op, job):
    for i in range(3):
        record_action(
            job.account,
            user=None,
            actor="api:" + job.account.name,
            action="terminate",
            scope={"job": job.job_id, "tasks": [f"t{i}"]},
            outcome={"succeeded": 1},
        )
    record_action(
        job.account,
        user=None,
        actor="olive",
        action="delete",
        scope={"job": "other", "tasks": ["x"]},
        outcome={"succeeded": 1},
    )
    body = op.get(reverse("web:audit"), {"actor": f"api:{job.account.name}"}).content.decode()
    assert body.count("<b>terminate</b>") == 3 and "<b>delete</b>" not in body
    assert (
        op.get(reverse("web:audit"), {"job": "other"}).content.decode().count("<b>delete</b>") == 1
    )
    body = op.get(reverse("web:audit"), {"action": "reboot"}).content.decode()
    assert "No record matches action=reboot" in body and '<a href="?">Clear the filter</a>' in body


def test_a_bulk_record_links_its_run(op, job):
    from tasks.operations.bulk import start_bulk_operation

    TaskFactory(job=job, task_id="f", failed=True)
    run = start_bulk_operation(
        job, action="reactivate", scope={"tasks": ["f"]}, user=None, actor="olive", total=1
    )
    assert (
        f'href="{reverse("web:bulk", args=[run.pk])}">run #{run.pk}</a>'
        in op.get(reverse("web:audit")).content.decode()
    )
