"""The admin never goes around the rules layer: identity, state and counter fields are
read-only, the changes it allows go through their operations (and their refusals show),
and rows without an operation cannot be added or deleted — a direct URL says why."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tasks.admin import JobAdminForm
from tasks.models import Account, AuditRecord, ComputeNode, Job, Pool, SubTask, Task
from tests.admin.helpers import act, form_data, texts
from tests.factories import (
    AccountFactory,
    AttemptFactory,
    ComputeNodeFactory,
    JobFactory,
    MembershipFactory,
    PoolFactory,
    SubTaskFactory,
    TaskFactory,
)
from tests.operations.conftest import counters

pytestmark = pytest.mark.django_db


def change_url(obj) -> str:
    return reverse(f"admin:tasks_{obj._meta.model_name}_change", args=[obj.pk])


def post_change(client, obj, **changes):
    url = change_url(obj)
    return client.post(url, form_data(client.get(url), **changes))


# --- tasks -----------------------------------------------------------------------------------


def test_a_tasks_slots_and_id_cannot_be_edited_and_its_job_stays_counted(admin_client_):
    task = TaskFactory(task_id="a")
    TaskFactory(job=task.job, task_id="b")
    before = counters(task.job)
    r = post_change(admin_client_, task, required_slots="5", task_id="B", job=str(JobFactory().pk))
    assert (
        r.status_code == 302
    )  # was a 500 (IntegrityError) for the id, and a counter drift for the slots
    task.refresh_from_db()
    assert (task.task_id, task.required_slots, task.job_id) == ("a", 1, task.job.pk) and counters(
        task.job
    ) == before


def test_only_the_constraints_are_fields_of_a_task(admin_client_):
    form = admin_client_.get(change_url(TaskFactory())).context["adminform"].form
    assert sorted(form.fields) == ["max_task_retry_count", "max_wall_clock_time", "retention_time"]


def test_a_constraint_change_goes_through_update_task(admin_client_):
    task = TaskFactory(running=True)
    etag = task.etag
    r = post_change(admin_client_, task, max_task_retry_count="3", max_wall_clock_time="01:00:00")
    assert r.status_code == 302
    task.refresh_from_db()
    assert task.max_task_retry_count == 3 and task.max_wall_clock_time.total_seconds() == 3600
    assert task.etag != etag  # Update Task's bookkeeping, which a plain save skipped
    record = AuditRecord.objects.get()
    assert (record.actor, record.action, record.scope["tasks"]) == (
        "admin:root",
        "update",
        [task.task_id],
    )


def test_saving_an_unchanged_task_changes_nothing(admin_client_):
    task = TaskFactory()
    assert post_change(admin_client_, task).status_code == 302
    task.refresh_from_db()
    assert task.etag == "0x8D0000000000003" and not AuditRecord.objects.exists()


def test_a_completed_tasks_constraints_are_refused_with_the_rule(admin_client_):
    task = TaskFactory(succeeded=True)
    r = post_change(admin_client_, task, max_task_retry_count="3")
    assert (
        r.status_code == 200
        and "TaskCompleted: The specified task is already in a completed state."
        in r.content.decode()
    )
    task.refresh_from_db()
    assert task.max_task_retry_count == 0 and not AuditRecord.objects.exists()


def test_a_constraint_the_api_refuses_is_refused_here(admin_client_):
    task = TaskFactory()
    r = post_change(admin_client_, task, max_task_retry_count="-2")
    assert r.status_code == 200 and "max_task_retry_count" in r.context["adminform"].form.errors
    task.refresh_from_db()
    assert task.max_task_retry_count == 0


# --- jobs ------------------------------------------------------------------------------------


def test_a_job_change_goes_through_patch_job(admin_client_):
    job = JobFactory()
    r = post_change(admin_client_, job, priority="7", max_task_retry_count="2")
    assert r.status_code == 302
    job.refresh_from_db()
    assert (job.priority, job.max_task_retry_count) == (7, 2) and job.etag != "0x8D0000000000002"
    assert job.spec["priority"] == 7  # as Patch Job stores it
    assert AuditRecord.objects.get().action == "job-update"


def test_a_job_value_the_api_refuses_is_refused_at_its_field(admin_client_):
    job = JobFactory()
    r = post_change(admin_client_, job, priority="5000")
    errors = r.context["adminform"].form.errors
    assert r.status_code == 200 and "InvalidPropertyValue" in errors["priority"][0]
    job.refresh_from_db()
    assert job.priority == 0


def test_a_jobs_id_account_and_state_cannot_be_edited(admin_client_):
    job = JobFactory(job_id="keep")
    r = post_change(
        admin_client_,
        job,
        job_id="other",
        account=str(AccountFactory().pk),
        state="completed",
        active_count="99",
    )
    assert r.status_code == 302
    job.refresh_from_db()
    assert (job.job_id, job.state, job.active_count) == ("keep", "active", 0)


def test_a_completed_job_refuses_changes_with_the_rule(admin_client_):
    job = JobFactory(completed=True)
    r = post_change(admin_client_, job, priority="3")
    assert r.status_code == 200 and "JobCompleted" in r.content.decode()


def test_a_refusal_at_save_time_saves_nothing_and_says_why(admin_client_, monkeypatch):
    """The job changed between the form's check and the save: the operation's own rule
    refuses, the admin shows it and logs no change."""
    job = JobFactory()
    url = change_url(job)
    data = form_data(admin_client_.get(url), priority="3")
    real_clean = JobAdminForm.clean

    def clean_then_someone_terminates(form):
        cleaned = real_clean(form)
        Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED)
        return cleaned

    monkeypatch.setattr(JobAdminForm, "clean", clean_then_someone_terminates)
    r = admin_client_.post(url, data, follow=True)
    job.refresh_from_db()
    assert job.priority == 0 and r.redirect_chain[-1][0] == url
    assert texts(r) == [
        "Nothing saved — JobCompleted: The specified job is already in a completed state."
    ]
    assert not LogEntry.objects.exists()
    assert AuditRecord.objects.get().outcome["refused"] == "JobCompleted"


# --- pools, nodes, subtasks, accounts --------------------------------------------------------


def test_a_pool_is_deleted_through_delete_pool_and_audited(admin_client_):
    pool = PoolFactory()
    ComputeNodeFactory(pool=pool)
    r = act(admin_client_, "delete_pools", [pool], model="pool")
    assert texts(r) == ["Delete: 1 done."]
    assert not Pool.objects.filter(pk=pool.pk, state=Pool.State.ACTIVE).exists()
    record = AuditRecord.objects.get()
    assert (record.action, record.scope, record.outcome) == (
        "pool-delete",
        {"pool": pool.pool_id},
        {"succeeded": 1},
    )


@pytest.mark.parametrize(
    "model, factory, gone",
    [
        ("pool", PoolFactory, "Delete selected pools (rules layer)"),
        ("computenode", ComputeNodeFactory, "A node cannot be deleted here"),
        ("subtask", SubTaskFactory, "A subtask cannot be deleted here"),
        ("account", AccountFactory, "An account cannot be deleted here"),
        ("job", JobFactory, "Delete selected jobs (rules layer)"),
    ],
)
def test_rows_without_a_delete_operation_here_are_refused_with_the_reason(
    admin_client_, model, factory, gone
):
    obj = factory()
    r = admin_client_.post(
        reverse(f"admin:tasks_{model}_delete", args=[obj.pk]), {"post": "yes"}, follow=True
    )
    assert r.redirect_chain[-1][0] == change_url(obj) and gone in texts(r)[0]
    assert type(obj).objects.filter(pk=obj.pk).exists()
    body = admin_client_.get(reverse(f"admin:tasks_{model}_changelist")).content.decode()
    assert 'value="delete_selected"' not in body


@pytest.mark.parametrize(
    "model, reason",
    [
        ("pool", "Pools are added through the Batch API"),
        ("computenode", "Nodes join a pool when their agent starts"),
        ("subtask", "Subtasks are made when"),
        ("account", "Accounts come from the configuration"),
        ("job", "Jobs are added through the Batch API"),
    ],
)
def test_rows_the_rules_add_are_not_added_here(admin_client_, model, reason):
    r = admin_client_.post(reverse(f"admin:tasks_{model}_add"), {}, follow=True)
    assert r.status_code == 200 and reason in texts(r)[0]
    body = admin_client_.get(reverse(f"admin:tasks_{model}_changelist")).content.decode()
    assert f'href="{reverse(f"admin:tasks_{model}_add")}"' not in body


@pytest.mark.parametrize(
    "model, factory, field, value",
    [
        ("computenode", ComputeNodeFactory, "slots", "9"),
        ("subtask", SubTaskFactory, "state", "completed"),
    ],
)
def test_nodes_and_subtasks_are_view_only(admin_client_, model, factory, field, value):
    obj = factory()
    url = change_url(obj)
    assert admin_client_.get(url).status_code == 200
    assert admin_client_.post(url, {field: value}).status_code == 403
    assert str(getattr(type(obj).objects.get(pk=obj.pk), field)) != value


def test_an_accounts_name_cannot_change_but_its_grants_can(admin_client_):
    account = AccountFactory(name="keep")
    user = MembershipFactory(account=AccountFactory()).user
    url = change_url(account)
    data = form_data(
        admin_client_.get(url),
        name="renamed",
        **{"memberships-0-user": str(user.pk), "memberships-0-role": "operator"},
    )
    assert admin_client_.post(url, data).status_code == 302
    account.refresh_from_db()
    assert account.name == "keep" and account.memberships.get().user == user


# --- no page answers 500 ---------------------------------------------------------------------


@pytest.fixture
def one_of_each(db):
    task = TaskFactory(failed=True)
    multi = TaskFactory(job=task.job, multi_instance=True, task_id="multi")
    sub = SubTaskFactory(task=multi)
    node = ComputeNodeFactory()
    AttemptFactory(task=task, node=node)
    return {
        "task": task,
        "job": task.job,
        "subtask": sub,
        "computenode": node,
        "pool": node.pool,
        "account": task.job.account,
    }


@pytest.mark.parametrize("model", ["task", "job", "subtask", "computenode", "pool", "account"])
def test_every_page_of_every_model_answers_without_a_server_error(
    admin_client_, one_of_each, model
):
    obj = one_of_each[model]
    admin_client_.raise_request_exception = False
    url = change_url(obj)
    page = admin_client_.get(url)
    assert page.status_code == 200
    if page.context["has_change_permission"]:
        assert admin_client_.post(url, form_data(page)).status_code == 302
    for view, args in (
        ("changelist", []),
        ("add", []),
        ("delete", [obj.pk]),
        ("history", [obj.pk]),
    ):
        assert (
            admin_client_.get(reverse(f"admin:tasks_{model}_{view}", args=args)).status_code < 500
        )
    assert Account.objects.exists() and Task.objects.exists() and ComputeNode.objects.exists()
    assert SubTask.objects.exists()
