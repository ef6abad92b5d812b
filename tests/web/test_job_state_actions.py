"""Disable (with the disableTasks choice) and enable a job from its page: asked first,
through the rules layer, audited, in the htmx and the plain path; the job schedule pages."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks.models import AuditRecord, Job, Task
from tasks.operations.job_schedules import add_job_schedule
from tests.factories import AccountFactory, JobFactory, TaskFactory
from tests.web.conftest import HTMX, job_url

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def state(job) -> str:
    return Job.objects.get(pk=job.pk).state


def test_the_job_page_offers_disable_to_an_operator_and_shows_a_viewer_why_not(op, view, job):
    page = op.get(job_url("job", job)).content.decode()
    assert 'data-job-action="disable"' in page and job_url("job-disable", job) in page
    seen = view.get(job_url("job", job)).content.decode()
    for action in ("disable", "update", "terminate", "delete"):
        shown = seen.split(f'data-job-action="{action}"')[1].split("</div>")[0]
        assert (
            'disabled title="Your role on this account is viewer' in shown
            and job_url(f"job-{action}", job) not in shown
        )


def test_disable_asks_first_with_the_three_modes_and_changes_nothing(op, job):
    for r in (op.get(job_url("job-disable", job)), op.post(job_url("job-disable", job))):
        page = r.content.decode()
        assert r.status_code == 200 and "confirm-job-disable" in page
        for mode in ("requeue", "terminate", "wait"):
            assert f'value="{mode}"' in page
    assert state(job) == "active"


@pytest.mark.parametrize("mode", ["requeue", "terminate"])
def test_disable_with_a_mode_handles_the_running_task_and_is_audited(op, job, mode):
    task = TaskFactory(job=job, running=True)
    r = op.post(job_url("job-disable", job), {"confirm": "yes", "option": mode})
    assert r.status_code == 302 and r["Location"] == job_url("job", job)
    assert state(job) == "disabled"
    assert Task.objects.get(pk=task.pk).state == ("active" if mode == "requeue" else "completed")
    record = AuditRecord.objects.get(action="job-disable")
    assert record.scope == {"job": job.job_id, "option": mode} and record.outcome == {
        "succeeded": 1
    }
    assert any("disabled" in m for m in messages_of(r))


def test_disable_wait_over_htmx_answers_with_a_client_redirect(op, job):
    TaskFactory(job=job, running=True)
    r = op.post(job_url("job-disable", job), {"confirm": "yes", "option": "wait"}, headers=HTMX)
    assert r.status_code == 200 and r["HX-Redirect"] == job_url("job", job)
    assert state(job) == "disabling"


def test_a_disabled_job_offers_enable_which_makes_it_active(op, account):
    job = JobFactory(account=account, disabled=True)
    page = op.get(job_url("job", job)).content.decode()
    assert 'data-job-action="enable"' in page and 'data-job-action="disable"' not in page
    r = op.post(job_url("job-enable", job))
    assert r.status_code == 302 and state(job) == "active"
    assert AuditRecord.objects.get(action="job-enable").outcome == {"succeeded": 1}


def test_a_refused_action_is_explained_disabled_and_audited_when_tried(op, account):
    job = JobFactory(account=account, completed=True)
    page = op.get(job_url("job", job)).content.decode()
    assert 'disabled title="The specified job is already in a completed state."' in page
    r = op.post(job_url("job-disable", job), {"confirm": "yes", "option": "requeue"})
    assert r.status_code == 302 and state(job) == "completed"
    assert any(m.startswith("JobCompleted") for m in messages_of(r))
    assert AuditRecord.objects.get(action="job-disable").outcome["refused"] == "JobCompleted"


def test_an_unknown_mode_is_refused_not_a_500(op, job):
    r = op.post(job_url("job-disable", job), {"confirm": "yes", "option": "later"})
    assert r.status_code == 302 and state(job) == "active"
    assert any(m.startswith("InvalidPropertyValue") for m in messages_of(r))


def test_a_viewer_may_not_act_and_a_stranger_sees_nothing(view, stranger, job):
    assert (
        view.post(job_url("job-disable", job), {"confirm": "yes", "option": "requeue"}).status_code
        == 403
    )
    assert stranger.get(job_url("job-disable", job)).status_code == 404
    assert state(job) == "active" and not AuditRecord.objects.exists()


def test_actions_need_csrf(operator, job):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert (
        client.post(
            job_url("job-disable", job), {"confirm": "yes", "option": "requeue"}
        ).status_code
        == 403
    )
    assert state(job) == "active"


# --- job schedules -------------------------------------------------------------------------


@pytest.fixture
def schedule(account):
    return add_job_schedule(
        account,
        spec={"id": "nightly", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
    )


def schedule_url(name, schedule):
    return reverse(f"web:{name}", args=[schedule.account.name, schedule.schedule_id])


def test_the_list_shows_each_schedule_with_its_jobs_task_counts(
    op, schedule, django_assert_num_queries
):
    job = Job.objects.get(job_schedule=schedule)
    for _ in range(3):
        TaskFactory(job=job, succeeded=True)
    TaskFactory(job=job, failed=True)
    add_job_schedule(
        AccountFactory(),
        spec={"id": "theirs", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
    )
    with django_assert_num_queries(5):  # session, user, schedules, counts of their jobs, roles
        page = op.get(reverse("web:job-schedules")).content.decode()
    assert 'data-schedule="nightly"' in page and "theirs" not in page
    row = page[page.index('data-schedule="nightly"') :].split("</tr>")[0]
    assert '<td class="num">3</td><td class="num">1</td>' in row


def test_the_schedule_page_lists_its_jobs_and_its_actions(op, view, schedule):
    page = op.get(schedule_url("job-schedule", schedule)).content.decode()
    assert 'data-job="nightly:job-1"' in page
    assert (
        'data-action="disable"' in page
        and 'data-action="terminate"' in page
        and 'data-action="enable"' not in page
    )
    assert "data-action=" not in view.get(schedule_url("job-schedule", schedule)).content.decode()
    job_page = op.get(
        reverse("web:job", args=[schedule.account.name, "nightly:job-1"])
    ).content.decode()
    assert schedule_url("job-schedule", schedule) in job_page


def test_disable_enable_and_terminate_a_schedule_from_its_page(op, schedule):
    assert op.post(schedule_url("job-schedule-disable", schedule)).status_code == 302
    assert type(schedule).objects.get(pk=schedule.pk).state == "disabled"
    assert op.post(schedule_url("job-schedule-enable", schedule)).status_code == 302
    assert (
        op.post(schedule_url("job-schedule-terminate", schedule)).status_code == 200
    )  # asks first
    assert type(schedule).objects.get(pk=schedule.pk).state == "active"
    r = op.post(schedule_url("job-schedule-terminate", schedule), {"confirm": "yes"}, headers=HTMX)
    assert r["HX-Redirect"] == schedule_url("job-schedule", schedule)
    assert type(schedule).objects.get(pk=schedule.pk).state == "completed"
    assert [a.action for a in AuditRecord.objects.order_by("created")] == [
        "schedule-disable",
        "schedule-enable",
        "schedule-terminate",
    ]
    page = op.get(schedule_url("job-schedule", schedule)).content.decode()
    assert "The specified job schedule is already in completed state." in page


def test_another_accounts_schedule_is_not_found(op):
    theirs = add_job_schedule(
        AccountFactory(),
        spec={"id": "theirs", "schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
    )
    assert op.get(schedule_url("job-schedule", theirs)).status_code == 404
    assert (
        op.post(schedule_url("job-schedule-terminate", theirs), {"confirm": "yes"}).status_code
        == 404
    )
