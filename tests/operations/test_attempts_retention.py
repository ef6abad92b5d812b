"""retentionTime: a completed task's directory is removed once it has passed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import NodeCleanup, Task
from tasks.operations.task_files import can_read_task_files, expire_task_retention
from tasks.operations.tasks import reactivate_task
from tests.execution import add, claim, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def ran(account):
    pool = make_pool(account)
    node = make_node(pool, "n1")
    task = add(make_job(account, pool), "t1", constraints={"retentionTime": timedelta(hours=1)})
    finish(claim(node)[0], 0)
    return node, fresh(task)


def test_a_task_that_never_ran_has_no_files_yet(account):
    task = add(make_job(account, make_pool(account)), "t1")
    assert can_read_task_files(task).code == "TaskFilesUnavailable"


def test_files_stay_until_the_retention_time_has_passed(ran):
    _, task = ran
    assert expire_task_retention() == 0
    assert can_read_task_files(fresh(task)) is None


def test_after_the_retention_time_the_node_removes_the_directory_and_files_answer_cleaned_up(ran):
    node, task = ran
    Task.objects.filter(pk=task.pk).update(end_time=timezone.now() - timedelta(hours=2))
    assert expire_task_retention() == 1
    cleanup = NodeCleanup.objects.get()
    assert (cleanup.node_name, cleanup.task_dir, cleanup.reason) == (
        "n1",
        task.task_root_directory,
        "retention",
    )
    assert can_read_task_files(fresh(task)).code == "TaskFilesCleanedup"
    assert expire_task_retention() == 0  # once


def test_an_unlimited_retention_never_expires(ran):
    _, task = ran
    Task.objects.filter(pk=task.pk).update(
        retention_time=None, end_time=timezone.now() - timedelta(days=400)
    )
    assert expire_task_retention() == 0


def test_a_reactivated_task_runs_again_with_fresh_files(account):
    pool = make_pool(account)
    node = make_node(pool, "n1")
    task = add(make_job(account, pool), "t1", constraints={"retentionTime": timedelta(hours=1)})
    finish(claim(node)[0], 1)
    Task.objects.filter(pk=task.pk).update(end_time=timezone.now() - timedelta(hours=2))
    expire_task_retention()
    reactivate_task(fresh(task))
    claim(node)
    assert can_read_task_files(fresh(task)) is None
