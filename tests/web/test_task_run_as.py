"""The task page says whom its latest attempt ran as (tasks.nodehost.identity's label)."""

import pytest
from django.utils import timezone

from tests.factories import AttemptFactory, TaskFactory
from tests.web.conftest import task_url

pytestmark = pytest.mark.django_db


def test_the_task_page_shows_the_user_the_latest_attempt_ran_as(op, job):
    task = TaskFactory(job=job, failed=True)
    t0 = timezone.now()
    AttemptFactory(
        task=task,
        number=1,
        claimed=t0,
        outcome="failed",
        run_as="root (auto-user, pool scope, admin)",
    )
    AttemptFactory(
        task=task,
        number=2,
        claimed=t0,
        outcome="failed",
        run_as="_azbp1234567890 (auto-user, pool scope, non-admin)<b>",
    )
    body = op.get(task_url("task", task)).content.decode()
    assert (
        '<dt>Ran as</dt><dd class="small" id="task-run-as">'
        "_azbp1234567890 (auto-user, pool scope, non-admin)&lt;b&gt;</dd>"
    ) in body


def test_no_line_before_an_attempt_reported_its_user(op, job):
    task = TaskFactory(job=job)
    AttemptFactory(task=task, number=1, claimed=timezone.now(), outcome="running")
    assert "Ran as" not in op.get(task_url("task", task)).content.decode()
