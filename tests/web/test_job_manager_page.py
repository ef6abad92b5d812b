"""The job page shows the job's job manager task (a link, its state, how it treats the job);
the task page marks the task as its job's manager."""

import pytest

from tasks.models import Task
from tests.execution import add, make_job, make_pool
from tests.web.conftest import job_url, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def managed(account):
    pool = make_pool(account)
    job = make_job(
        account,
        pool,
        "managed",
        jobManagerTask={
            "id": "boss",
            "commandLine": "/bin/true",
            "killJobOnCompletion": False,
            "allowLowPriorityNode": False,
            "authenticationTokenSettings": {"access": ["job"]},
        },
    )
    add(job, "worker")
    return job


def test_the_job_page_links_the_job_manager_with_its_state(view, managed):
    page = view.get(job_url("job", managed)).content.decode()
    assert 'id="job-manager"' in page
    assert f'href="{task_url("task", Task.objects.get(job=managed, task_id="boss"))}"' in page
    assert '<span class="badge state-active" id="job-manager-state">active</span>' in page
    assert (
        "Its completion leaves the job running." in page and "never on a low-priority node" in page
    )
    assert "It gets a token for this job" in page


def test_a_job_without_a_manager_shows_no_section(view, account):
    job = make_job(account, make_pool(account), "plain")
    assert 'id="job-manager"' not in view.get(job_url("job", job)).content.decode()


def test_the_task_page_marks_the_job_manager_only(view, managed):
    boss = Task.objects.get(job=managed, task_id="boss")
    worker = Task.objects.get(job=managed, task_id="worker")
    assert 'id="task-job-manager"' in view.get(task_url("task", boss)).content.decode()
    assert 'id="task-job-manager"' not in view.get(task_url("task", worker)).content.decode()
