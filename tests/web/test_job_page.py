"""The job itself on its page (tasks/web/job_page.py): its properties, count tiles that
filter, and its actions (update, terminate, delete) with a confirmation or a preview first,
through the rules layer, audited, and disabled with the reason where refused."""

from datetime import timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import AuditRecord, Job, Task
from tasks.operations.jobs import update_job
from tasks.web.job_page import ACTIONS
from tests.factories import JobFactory, TaskFactory
from tests.web.conftest import HTMX, job_url

pytestmark = pytest.mark.django_db


def fresh(job) -> Job:
    return Job.objects.get(pk=job.pk)


def test_the_page_shows_the_job_itself(op, account):
    job = JobFactory(
        account=account,
        display_name="Nightly render",
        priority=250,
        max_parallel_tasks=4,
        max_task_retry_count=3,
        max_wall_clock_time=timedelta(hours=2),
        on_all_tasks_complete="terminatejob",
        uses_task_dependencies=True,
        spec={
            "metadata": [{"name": "owner", "value": "vfx-team"}],
            "allowTaskPreemption": False,
            "networkConfiguration": {"subnetId": "/subscriptions/x/subnets/y"},
            "poolInfo": {
                "autoPoolSpecification": {
                    "autoPoolIdPrefix": "render",
                    "poolLifetimeOption": "job",
                    "pool": {"vmSize": "standard_d2s_v3", "targetDedicatedNodes": 3},
                }
            },
        },
    )
    body = op.get(job_url("job", job)).content.decode()
    props = body.split('id="job-properties"')[1].split("</section>")[0]
    for shown in (
        "Nightly render",
        "<dd>250</dd>",
        "<dd>4</dd>",
        "<dd>3</dd>",
        "2h 00m",
        "terminatejob",
        "used",
        "not allowed",
        "owner",
        "vfx-team",
        "standard_d2s_v3, 3 dedicated",
    ):
        assert shown in props, shown
    assert 'data-stored-only="Network configuration"' in props and "stored only" in props
    assert 'id="job-display-name">Nightly render' in body


def test_count_tiles_link_to_the_tasks_they_count(op, job):
    TaskFactory(job=job, task_id="a")
    TaskFactory(job=job, task_id="f", failed=True)
    body = op.get(job_url("job", job)).content.decode()
    counts = body.split('id="job-counts"')[1].split('<span class="spacer">')[0]
    assert '<a class="count failed" href="?state=completed&amp;result=failure"' in counts
    failed = op.get(job_url("job", job) + "?state=completed&result=failure").content.decode()
    table = failed.split('id="task-table"')[1]
    assert ">f<" in table and ">a<" not in table


def test_terminate_asks_first_then_terminates_and_audits(op, job):
    TaskFactory(job=job, task_id="r", running=True)
    ask = op.get(job_url("job-terminate", job), headers=HTMX)
    assert (
        "1 running task</b> is killed" in ask.content.decode()
        and fresh(job).state == Job.State.ACTIVE
    )
    assert (
        op.post(job_url("job-terminate", job)).status_code in (200, 302)
        and fresh(job).state == Job.State.ACTIVE
    )
    op.post(job_url("job-terminate", job), {"confirm": "yes"})
    job = fresh(job)
    assert job.state == Job.State.COMPLETED and job.terminate_reason == "UserTerminate"
    assert Task.objects.get(job=job, task_id="r").state == Task.State.COMPLETED
    record = AuditRecord.objects.get(action="job-terminate")
    assert record.scope == {"job": job.job_id} and record.outcome == {"succeeded": 1}


def test_delete_asks_first_then_deletes_and_goes_to_the_jobs(op, job):
    TaskFactory(job=job)
    assert "are deleted" in op.get(job_url("job-delete", job)).content.decode()
    response = op.post(job_url("job-delete", job), {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == "/web/"
    assert not Job.objects.filter(pk=job.pk).exists() or fresh(job).state == Job.State.DELETING
    assert AuditRecord.objects.filter(action="job-delete", outcome={"succeeded": 1}).exists()


def form(job, **changes) -> dict:
    data = {
        "priority": job.priority,
        "max_parallel_tasks": job.max_parallel_tasks,
        "max_wall_clock_time": "",
        "max_task_retry_count": job.max_task_retry_count,
        "on_all_tasks_complete": job.on_all_tasks_complete,
    }
    return {**data, **changes}


def test_update_previews_the_change_then_patches_the_job(op, job):
    preview = op.post(
        job_url("job-update", job), form(job, priority=500, max_wall_clock_time="01:30:00")
    )
    body = preview.content.decode()
    table = body.split('id="job-update-preview"')[1].split("</table>")[0]
    assert '<td class="mono">priority</td><td>0</td><td><b>500</b>' in table
    assert "constraints.maxWallClockTime</td><td>unlimited</td><td><b>PT1H30M</b>" in table
    assert "maxParallelTasks" not in table
    assert fresh(job).priority == 0  # nothing yet
    op.post(
        job_url("job-update", job),
        form(job, priority=500, max_wall_clock_time="01:30:00", confirm="yes"),
    )
    job = fresh(job)
    assert job.priority == 500 and job.max_wall_clock_time == timedelta(minutes=90)
    record = AuditRecord.objects.get(action="job-update")
    assert record.scope["changes"]["priority"] == "500" and record.outcome == {"succeeded": 1}


def test_update_shows_the_rules_refusal_on_its_field(op, job):
    body = op.post(job_url("job-update", job), form(job, priority=5000)).content.decode()
    assert "InvalidPropertyValue" in body and "between -1000 and 1000" in body
    body = op.post(
        job_url("job-update", job), form(job, max_parallel_tasks=0, confirm="yes")
    ).content.decode()
    assert "InvalidPropertyValue" in body
    assert (
        fresh(job).max_parallel_tasks == -1
        and not AuditRecord.objects.filter(action="job-update").exists()
    )


def test_terminatejob_cannot_be_turned_off_again(op, batch, account):
    """Batch refuses onAllTasksComplete terminatejob -> noaction (400 InvalidPropertyValue),
    by Patch and by an Update (PUT) that leaves it out; the dashboard shows the refusal."""
    job = JobFactory(account=account, on_all_tasks_complete="terminatejob")
    TaskFactory(job=job)  # one active task: the job is not terminated by the switch
    with pytest.raises(BatchError) as refused:
        update_job(job, spec={"onAllTasksComplete": "noaction"}, replace=False)
    assert refused.value.code == "InvalidPropertyValue"
    with pytest.raises(BatchError):
        update_job(job, spec={"priority": 1, "poolInfo": {"poolId": "pool"}}, replace=True)
    update_job(job, spec={"priority": 2}, replace=False)  # what leaves it alone is fine
    body = op.post(
        job_url("job-update", job),
        form(fresh(job), on_all_tasks_complete="noaction", confirm="yes"),
    ).content.decode()
    assert "cannot be changed from terminatejob to noaction" in body
    assert fresh(job).on_all_tasks_complete == "terminatejob"
    record = AuditRecord.objects.get(action="job-update")
    assert record.outcome["refused"] == "InvalidPropertyValue"


def test_a_viewer_sees_the_actions_disabled_and_cannot_post_them(view, job):
    body = view.get(job_url("job", job)).content.decode()
    for name in ACTIONS:
        shown = body.split(f'data-job-action="{name}"')[1].split("</div>")[0]
        assert "disabled" in shown and "viewer" in shown
    for name in ("job-update", "job-terminate", "job-delete"):
        assert view.post(job_url(name, job), {"confirm": "yes", **form(job)}).status_code == 403
    assert fresh(job).state == Job.State.ACTIVE


@pytest.mark.parametrize(
    "trait, refused", [("completed", ["update", "terminate"]), ("deleting", list(ACTIONS))]
)
def test_refused_actions_are_disabled_with_the_rule(op, account, trait, refused):
    job = JobFactory(account=account, **{trait: True})
    body = op.get(job_url("job", job)).content.decode() if trait != "deleting" else None
    if body is None:
        from tasks.web.access import Access
        from tasks.web.job_page import buttons

        access = Access(account=account, role="operator")
        assert [b.action for b in buttons(access, job) if b.reason] == refused
        return
    for name in ACTIONS:
        shown = body.split(f'data-job-action="{name}"')[1].split("</div>")[0]
        assert ("disabled" in shown) == (name in refused), name
