"""Sign-in and roles: a user sees only the accounts granted to them, viewers look and
operators act, and the same check refuses a forged request."""

import pytest
from django.urls import reverse

from tasks.models import AccountMembership, Task
from tests.factories import AccountFactory, JobFactory, MembershipFactory, TaskFactory, UserFactory
from tests.web.conftest import HTMX, job_url, signed_in, task_url

pytestmark = pytest.mark.django_db


def test_pages_ask_anonymous_visitors_to_sign_in(client, job):
    r = client.get(job_url("job", job))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))


def test_an_htmx_request_after_the_session_expired_sends_the_whole_page_to_sign_in(client, job):
    page = job_url("job", job)
    r = client.get(page, headers={**HTMX, "HX-Current-URL": f"http://testserver{page}"})
    assert r.status_code == 200
    assert r["HX-Redirect"].startswith(reverse("login")) and "next=" in r["HX-Redirect"]


def test_root_leads_to_the_jobs_page(client):
    r = client.get("/")
    assert r.status_code == 302 and r["Location"] == reverse("web:jobs")


def test_sign_in_with_a_password_reaches_the_jobs(client, db):
    UserFactory(username="alice")
    r = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests-1"})
    assert r.status_code == 302 and r["Location"] == reverse("web:jobs")


def test_jobs_page_lists_only_jobs_of_granted_accounts(op, job):
    other = JobFactory(account=AccountFactory(), job_id="not-yours")
    body = op.get(reverse("web:jobs")).content.decode()
    assert job.job_id in body and other.job_id not in body


def test_superuser_sees_every_account(job):
    other = JobFactory(account=AccountFactory(), job_id="someone-elses")
    admin = signed_in(UserFactory(is_superuser=True, is_staff=True))
    body = admin.get(reverse("web:jobs")).content.decode()
    assert job.job_id in body and other.job_id in body


def test_a_job_of_another_account_is_not_found(stranger, job):
    assert stranger.get(job_url("job", job)).status_code == 404


def test_a_viewer_of_one_account_is_no_operator_of_another(viewer, job):
    other = AccountFactory()
    MembershipFactory(account=other, user=viewer, role=AccountMembership.Role.OPERATOR)
    task = TaskFactory(job=job, failed=True)
    r = signed_in(viewer).post(task_url("task-reactivate", task))
    assert r.status_code == 403


@pytest.mark.parametrize(
    "name", ["task-terminate", "task-reactivate", "task-delete", "task-update"]
)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["plain", "htmx"])
def test_a_viewers_forged_post_is_refused_and_changes_nothing(view, job, name, headers):
    task = TaskFactory(job=job, failed=True)
    r = view.post(
        task_url(name, task), {"confirm": "yes", "max_task_retry_count": "3"}, headers=headers
    )
    assert r.status_code == 403
    task.refresh_from_db()
    assert task.state == Task.State.COMPLETED and task.max_task_retry_count == 0


def test_a_viewers_forged_add_and_bulk_are_refused(view, job):
    TaskFactory(job=job, failed=True)
    assert (
        view.post(
            job_url("task-add", job), {"task_id": "x", "command_line": "/bin/true"}
        ).status_code
        == 403
    )
    assert view.post(job_url("job-bulk", job), {"action": "reactivate"}).status_code == 403
    assert not Task.objects.filter(task_id="x").exists()


def test_posts_without_the_csrf_token_are_refused(operator, job):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    task = TaskFactory(job=job, failed=True)
    assert client.post(task_url("task-reactivate", task)).status_code == 403
    task.refresh_from_db()
    assert task.state == Task.State.COMPLETED


def _grouped(job, role):
    from django.contrib.auth.models import Group

    from tasks.models import AccountGroupGrant

    group = Group.objects.create(name=f"{role}s of {job.account.name}")
    AccountGroupGrant.objects.create(account=job.account, group=group, role=role)
    user = UserFactory()
    user.groups.add(group)
    return user


def test_a_group_grant_lets_its_members_look_but_a_viewer_grant_not_act(job):
    task = TaskFactory(job=job, failed=True)
    member = signed_in(_grouped(job, AccountMembership.Role.VIEWER))
    assert job.job_id in member.get(reverse("web:jobs")).content.decode()
    assert member.get(task_url("task", task)).status_code == 200
    assert member.post(task_url("task-reactivate", task), {"confirm": "1"}).status_code == 403
    assert Task.objects.get(pk=task.pk).state == Task.State.COMPLETED


def test_an_operator_group_grant_outranks_a_personal_viewer_membership(job):
    task = TaskFactory(job=job, failed=True)
    user = _grouped(job, AccountMembership.Role.OPERATOR)
    MembershipFactory(account=job.account, user=user, role=AccountMembership.Role.VIEWER)
    client = signed_in(user)
    assert client.post(task_url("task-reactivate", task)).status_code == 302
    assert Task.objects.get(pk=task.pk).state == Task.State.ACTIVE


def test_a_group_without_a_grant_gives_nothing(job):
    from django.contrib.auth.models import Group

    user = UserFactory()
    user.groups.add(Group.objects.create(name="unrelated"))
    client = signed_in(user)
    assert job.job_id not in client.get(reverse("web:jobs")).content.decode()
    assert client.get(job_url("job", job)).status_code == 404
