"""A task's page: every property, the state timeline from its attempts, execution and
failure information, the node link, multi-instance instances side by side, and buttons
enabled or disabled with the reason from the same can_* rule the API uses."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    AttemptFactory,
    ComputeNodeFactory,
    PoolFactory,
    SubTaskFactory,
    TaskFactory,
)
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


def test_shows_every_property(op, job):
    task = TaskFactory(
        job=job,
        command_line="/bin/sh -c 'echo hi'",
        spec={
            "environmentSettings": [{"name": "COLOR", "value": "blue"}],
            "resourceFiles": [{"httpUrl": "https://example.com/in.txt", "filePath": "in.txt"}],
            "outputFiles": [
                {
                    "filePattern": "*.log",
                    "destination": {},
                    "uploadOptions": {"uploadCondition": "taskcompletion"},
                }
            ],
            "dependsOn": {"taskIds": ["other"]},
            "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "none"}}]},
        },
        max_wall_clock_time=timedelta(hours=2),
        max_task_retry_count=3,
    )
    body = op.get(task_url("task", task)).content.decode()
    for text in (
        "/bin/sh -c &#x27;echo hi&#x27;",
        "COLOR",
        "blue",
        "https://example.com/in.txt",
        "*.log",
        "Dependencies",
        "Exit conditions",
        "2h 00m",
        "of 3",
    ):
        assert text in body, text


def test_failed_task_shows_its_failure_and_exit_code(op, job):
    task = TaskFactory(job=job, failed=True, exit_code=137)
    body = op.get(task_url("task", task)).content.decode()
    assert 'id="task-exit-code">137<' in body and "FailureExitCode" in body


def test_timeline_and_attempts_come_from_attempt_rows(op, job):
    node = ComputeNodeFactory(node_id="node-a", pool=PoolFactory(account=job.account, pool_id="p1"))
    t0 = timezone.now() - timedelta(minutes=5)
    task = TaskFactory(
        job=job, failed=True, node=node, node_name="node-a", pool_id="p1", retry_count=1
    )
    AttemptFactory(task=task, node=node, number=1, claimed=t0, outcome="failed", exit_code=2)
    AttemptFactory(
        task=task,
        node=node,
        number=2,
        claimed=t0 + timedelta(minutes=1),
        outcome="failed",
        exit_code=1,
    )
    body = op.get(task_url("task", task)).content.decode()
    assert body.count('class="badge outcome-failed"') == 2
    assert body.count('class="step reached') == 4
    assert f'href="/web/{job.account.name}/pools/p1/nodes/node-a/"' in body


def test_multi_instance_shows_the_primary_beside_each_subtask(op, job):
    task = TaskFactory(job=job, multi_instance=True, failed=True, node_name="n0")
    SubTaskFactory(
        task=task, subtask_id=1, state="completed", node_name="n1", exit_code=0, result="success"
    )
    SubTaskFactory(
        task=task,
        subtask_id=2,
        state="completed",
        node_name="n2",
        exit_code=9,
        result="failure",
        failure_info={"category": "usererror", "code": "FailureExitCode", "message": "boom"},
    )
    body = op.get(task_url("task", task)).content.decode()
    assert 'data-instance="primary (0)"' in body and 'data-instance="subtask 1"' in body
    assert 'class="bad" data-instance="subtask 2"' in body and "boom" in body


def test_succeeded_task_says_why_it_cannot_be_reactivated(op, job):
    task = TaskFactory(job=job, succeeded=True)
    body = op.get(task_url("task", task)).content.decode()
    assert "The specified task completed successfully and cannot be reactivated." in body
    assert "The specified task is already in a completed state." in body  # terminate and update


def test_a_viewer_finds_no_enabled_action(view, job):
    task = TaskFactory(job=job, failed=True)
    body = view.get(task_url("task", task)).content.decode()
    assert body.count('disabled title="Your role on this account is viewer') == 4
    assert "hx-post" not in body.split('id="task-actions"')[1].split("</div>\n\n")[0]


def test_costs_a_fixed_number_of_queries(op, job, django_assert_num_queries):
    task = TaskFactory(job=job, multi_instance=True, running=True)
    SubTaskFactory.create_batch(3, task=task)
    AttemptFactory.create_batch(4, task=task)
    # session, user, membership, job, task, attempts, subtasks
    with django_assert_num_queries(7):
        assert op.get(task_url("task", task)).status_code == 200


def test_polls_a_running_task_and_stops_once_it_completes(op, job):
    task = TaskFactory(job=job, running=True)
    live = op.get(task_url("task", task), headers=HTMX)
    assert live.status_code == 200 and "every 2s" in live.content.decode()
    task.state, task.result = "completed", "success"
    task.save()
    done = op.get(task_url("task", task), headers=HTMX)
    assert done.status_code == 286 and "hx-trigger" not in done.content.decode()


def test_unknown_task_is_not_found(op, job):
    assert op.get(f"/web/{job.account.name}/jobs/{job.job_id}/tasks/nope/").status_code == 404


def test_links_the_pool_and_the_node_of_each_run(op, job):
    node = ComputeNodeFactory(
        pool=PoolFactory(account=job.account, pool_id=job.pool_id or "p1"), node_id="n-7"
    )
    job.pool_id = node.pool.pool_id
    job.save()
    task = TaskFactory(
        job=job, task_id="linked", succeeded=True, node=node, node_name="n-7", pool_id=job.pool_id
    )
    AttemptFactory(task=task, node=node, outcome="succeeded")
    body = op.get(task_url("task", task)).content.decode()
    pool_url = reverse("web:pool", args=[job.account.name, job.pool_id])
    node_url = reverse("web:node", args=[job.account.name, job.pool_id, "n-7"])
    assert f'<a href="{pool_url}">' in body.split('id="task-pool"')[1].split("</dd>")[0]
    assert node_url in body.split('id="task-attempts"')[1].split("</table>")[0]


def test_marks_the_properties_stored_only_to_round_trip(op, job):
    task = TaskFactory(
        job=job,
        task_id="files",
        spec={
            "containerSettings": {"imageName": "ubuntu"},
            "outputFiles": [
                {
                    "filePattern": "*.png",
                    "destination": {"container": {"containerUrl": "https://s/c"}},
                    "uploadOptions": {"uploadCondition": "tasksuccess"},
                }
            ],
            "dependsOn": {"taskIds": ["a"]},
        },
    )
    body = op.get(task_url("task", task)).content.decode()
    marked = [part.split('"')[0] for part in body.split('data-stored-only="')[1:]]
    # Resource and output files are transferred (tasks/node/resource_files.py, output_files.py).
    assert marked == ["containerSettings"]
    assert (
        'data-stored-only="dependsOn"' not in body and body.count('class="badge stored-only"') == 1
    )
