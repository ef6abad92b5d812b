"""A node's page: its state and orders, its start task's info and output (escaped text, or a
download, never inline), what runs there and what ran; live while the node can change."""

import pytest
from django.urls import reverse

from tasks.models import Job
from tests.factories import AttemptFactory, ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db

START = {"commandLine": "/bin/sh -c 'apt-get install -y blender'", "waitForSuccess": True, "maxTaskRetryCount": 2}


@pytest.fixture
def nodes_dir(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "taskfiles": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "nodes")}}}
    return tmp_path / "nodes"


@pytest.fixture
def node(account, job, nodes_dir):
    pool = PoolFactory(account=account, pool_id="farm", spec={"startTask": START})
    node = ComputeNodeFactory(pool=pool, node_id="n1", state="starttaskfailed", hostname="worker-7", start_task_info={
        "state": "completed", "startTime": "2026-12-01T10:00:00.0000000Z", "endTime": "2026-12-01T10:00:09.0000000Z",
        "exitCode": 100, "result": "failure", "retryCount": 2, "lastRetryTime": "2026-12-01T10:00:06.0000000Z",
        "failureInfo": {"category": "usererror", "code": "FailureExitCode",
                        "message": "The task exited with an exit code representing a failure"}})
    startup = nodes_dir / account.name / "farm" / "n1" / "startup"
    startup.mkdir(parents=True)
    (startup / "stdout.txt").write_bytes(b"Reading package lists...\n<script>alert('from the start task')</script>\n")
    (startup / "stderr.txt").write_bytes(b"E: Unable to locate package blender\n")
    return node


def url(node, name: str = "node", *extra) -> str:
    return reverse(f"web:{name}", args=[node.pool.account.name, node.pool.pool_id, node.node_id, *extra])


def test_shows_the_start_tasks_info_and_its_failure(op, node):
    body = op.get(url(node)).content.decode()
    info = body.split('id="node-start-task"')[1].split("</section>")[0]
    assert 'id="start-task-state">completed <span class="badge result-failure">failure' in info
    assert 'id="start-task-exit-code">100<' in info and "2 of 2" in info and "FailureExitCode" in info
    assert "apt-get install -y blender" in info
    assert 'id="node-state">starttaskfailed<' in body and "worker-7" in body


def test_shows_the_start_tasks_output_as_escaped_text(op, node):
    body = op.get(url(node)).content.decode()
    output = body.split('id="node-output-text">')[1].split("</pre>")[0]
    assert "Reading package lists..." in output and "<script>" not in output
    assert "&lt;script&gt;alert(&#x27;from the start task&#x27;)&lt;/script&gt;" in output


def test_switches_to_stderr_in_both_paths(op, node):
    for headers in ({}, HTMX):
        r = op.get(url(node, "node-output") + "?file=startup/stderr.txt", headers=headers)
        assert "Unable to locate package blender" in r.content.decode()
    assert op.get(url(node, "node-output") + "?file=../../secret", headers=HTMX).status_code == 404


def test_the_output_follows_while_the_start_task_runs_and_stops_after(op, node):
    assert op.get(url(node, "node-output"), headers=HTMX).status_code == 286
    node.start_task_info = {"state": "running", "startTime": "2026-12-01T10:00:00.0000000Z", "retryCount": 0}
    node.state = "waitingforstarttask"
    node.save()
    r = op.get(url(node, "node-output"), headers=HTMX)
    assert r.status_code == 200 and 'hx-trigger="every 2s"' in r.content.decode()


def test_a_start_task_file_downloads_as_a_sandboxed_attachment(op, node):
    r = op.get(url(node, "node-file", "startup/stdout.txt"))
    assert r.status_code == 200 and r["Content-Type"] == "application/octet-stream"
    assert r["Content-Disposition"].startswith("attachment") and r["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in r["Content-Security-Policy"]
    assert b"".join(r.streaming_content).startswith(b"Reading package lists")
    assert op.get(url(node, "node-file", "startup/nope.txt")).status_code == 404


def test_a_node_without_output_says_why(op, account, nodes_dir):
    node = ComputeNodeFactory(pool=PoolFactory(account=account, pool_id="plain"), node_id="n0")
    body = op.get(url(node)).content.decode()
    assert "The pool has no start task." in body and "No startup/stdout.txt" in body


def test_shows_what_runs_there_and_what_ran(op, node, job):
    task = TaskFactory(job=job, task_id="now", running=True)
    AttemptFactory(task=task, node=node, outcome="running", end_time=None, slots=1)
    AttemptFactory(task=TaskFactory(job=job, task_id="before"), node=node, outcome="failed", exit_code=3)
    body = op.get(url(node)).content.decode()
    assert "/tasks/now/" in body.split('id="node-running"')[1].split("</section>")[0]
    assert "outcome-failed" in body.split('id="node-recent"')[1]


@pytest.mark.parametrize("fields, work, live", [
    ({"state": "idle"}, False, False),
    ({"state": "idle"}, True, True),
    ({"state": "running"}, False, True),
    ({"state": "rebooting", "pending_action": "reboot"}, False, True),
    ({"state": "offline", "scheduling_enabled": False}, True, False),
    ({"state": "creating"}, False, True),
])
def test_is_live_while_the_node_can_change_by_itself(op, account, fields, work, live):
    node = ComputeNodeFactory(pool=PoolFactory(account=account, pool_id="p"), node_id="n", **fields)
    if work:
        JobFactory(account=account, pool_id="P", state=Job.State.ACTIVE, active_count=1)
    assert op.get(url(node), headers=HTMX).status_code == (200 if live else 286)


def test_a_node_of_another_account_is_not_found(stranger, node):
    assert stranger.get(url(node)).status_code == 404
    assert stranger.get(url(node, "node-file", "startup/stdout.txt")).status_code == 404


def test_costs_a_fixed_number_of_queries(op, node, job, django_assert_num_queries):
    for i in range(5):
        AttemptFactory(task=TaskFactory(job=job, task_id=f"t{i}"), node=node)
    # session, user, membership, pool, node, running, recent, work waiting
    with django_assert_num_queries(8):
        op.get(url(node))
    with django_assert_num_queries(8):
        op.get(url(node), headers=HTMX)
