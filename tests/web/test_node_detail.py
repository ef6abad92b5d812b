"""A node's page: its state and orders, its start task's info and output (escaped text, or a
download, never inline), what runs there and what ran; live while the node can change."""

import pytest
from django.urls import reverse

from tasks.models import Job
from tests.factories import AttemptFactory, ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db

START = {
    "commandLine": "/bin/sh -c 'apt-get install -y blender'",
    "waitForSuccess": True,
    "maxTaskRetryCount": 2,
}


@pytest.fixture
def node(account, job, nodes_dir):
    pool = PoolFactory(account=account, pool_id="farm", spec={"startTask": START})
    node = ComputeNodeFactory(
        pool=pool,
        node_id="n1",
        state="starttaskfailed",
        hostname="worker-7",
        start_task_info={
            "state": "completed",
            "startTime": "2026-12-01T10:00:00.0000000Z",
            "endTime": "2026-12-01T10:00:09.0000000Z",
            "exitCode": 100,
            "result": "failure",
            "retryCount": 2,
            "lastRetryTime": "2026-12-01T10:00:06.0000000Z",
            "failureInfo": {
                "category": "usererror",
                "code": "FailureExitCode",
                "message": "The task exited with an exit code representing a failure",
            },
        },
    )
    startup = nodes_dir / account.name / "farm" / "n1" / "startup"
    startup.mkdir(parents=True)
    (startup / "stdout.txt").write_bytes(
        b"Reading package lists...\n<script>alert('from the start task')</script>\n"
    )
    (startup / "stderr.txt").write_bytes(b"E: Unable to locate package blender\n")
    return node


def url(node, name: str = "node", *extra) -> str:
    return reverse(
        f"web:{name}", args=[node.pool.account.name, node.pool.pool_id, node.node_id, *extra]
    )


def test_shows_the_start_tasks_info_and_its_failure(op, node):
    body = op.get(url(node)).content.decode()
    info = body.split('id="node-start-task"')[1].split("</section>")[0]
    assert 'id="start-task-state">completed <span class="badge result-failure">failure' in info
    assert (
        'id="start-task-exit-code">100<' in info and "2 of 2" in info and "FailureExitCode" in info
    )
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
    node.start_task_info = {
        "state": "running",
        "startTime": "2026-12-01T10:00:00.0000000Z",
        "retryCount": 0,
    }
    node.state = "waitingforstarttask"
    node.save()
    r = op.get(url(node, "node-output"), headers=HTMX)
    assert r.status_code == 200 and 'hx-trigger="every 2s"' in r.content.decode()


def test_a_start_task_file_downloads_as_a_sandboxed_attachment(op, node):
    r = op.get(url(node, "node-file", "startup/stdout.txt"))
    assert r.status_code == 200 and r["Content-Type"] == "application/octet-stream"
    assert (
        r["Content-Disposition"].startswith("attachment")
        and r["X-Content-Type-Options"] == "nosniff"
    )
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
    AttemptFactory(
        task=TaskFactory(job=job, task_id="before"), node=node, outcome="failed", exit_code=3
    )
    body = op.get(url(node)).content.decode()
    assert "/tasks/now/" in body.split('id="node-running"')[1].split("</section>")[0]
    assert "outcome-failed" in body.split('id="node-recent"')[1]


@pytest.mark.parametrize(
    "fields, work, live",
    [
        ({"state": "idle"}, False, False),
        ({"state": "idle"}, True, True),
        ({"state": "running"}, False, True),
        ({"state": "rebooting", "pending_action": "reboot"}, False, True),
        ({"state": "offline", "scheduling_enabled": False}, True, False),
        ({"state": "creating"}, False, True),
    ],
)
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


@pytest.fixture
def node_files(node, nodes_dir):
    """Beside the start task's output: a shared file, a task's directory and a link out."""
    root = nodes_dir / node.pool.account.name / "farm" / "n1"
    (root / "shared").mkdir()
    (root / "shared" / "model.bin").write_bytes(b"\x00\x01" * 100)
    task_dir = root / "workitems" / "render" / "job-1" / "frame-7"
    (task_dir / "wd").mkdir(parents=True)
    (task_dir / "stdout.txt").write_bytes(b"<img src=x onerror=alert(1)> frame 7\n")
    (root / "shared" / "passwd").symlink_to("/etc/passwd")
    return root


def test_the_files_page_lists_every_file_under_the_root_by_directory_with_its_task(
    op, node, node_files
):
    body = op.get(url(node, "node-files")).content.decode()
    table = body.split('id="node-files-table"')[1].split("</table>")[0]
    names = [part.split('"')[0] for part in table.split('data-file="')[1:]]
    assert names == [
        "shared/model.bin",
        "shared/passwd",
        "startup/stderr.txt",
        "startup/stdout.txt",
        "workitems/render/job-1/frame-7/stdout.txt",
    ]
    directories = [part.split('"')[0] for part in table.split('data-directory="')[1:]]
    assert directories == ["shared", "startup", "workitems/render/job-1/frame-7"]
    task_dir = table.split('data-directory="workitems/render/job-1/frame-7"')[1].split("</tbody>")[
        0
    ]
    assert reverse("web:task", args=[node.pool.account.name, "render", "frame-7"]) in task_dir
    assert 'id="dir-workitems"' in task_dir and "task <a" in task_dir
    row = task_dir.split('data-file="workitems/render/job-1/frame-7/stdout.txt"')[1].split("</tr>")[
        0
    ]
    assert (
        ">stdout.txt</a>" in row
        and url(node, "node-file", "workitems/render/job-1/frame-7/stdout.txt") in row
    )
    assert "task <a" not in table.split('data-directory="shared"')[1].split("</tbody>")[0]
    link = table.split('data-file="shared/passwd"')[1].split("</tr>")[0]
    assert "symbolic link" in link and "Download" not in link and "href" not in link


def test_any_file_under_the_root_opens_as_escaped_text_and_a_link_is_never_followed(
    op, node, node_files
):
    body = op.get(
        url(node, "node-output") + "?file=workitems/render/job-1/frame-7/stdout.txt"
    ).content.decode()
    text = body.split('id="node-output-text">')[1].split("</pre>")[0]
    assert "&lt;img src=x onerror=alert(1)&gt; frame 7" in text and "<img" not in text
    body = op.get(url(node, "node-output") + "?file=shared/passwd").content.decode()
    assert "root:" not in body and "No file shared/passwd on this node" in body
    assert op.get(url(node, "node-file", "shared/passwd")).status_code == 404
    assert (
        "binary file"
        in op.get(url(node, "node-output") + "?file=shared/model.bin").content.decode()
    )


def test_a_node_without_files_says_so(op, account, nodes_dir):
    node = ComputeNodeFactory(pool=PoolFactory(account=account, pool_id="plain"), node_id="n0")
    assert "No files: the node has run neither" in op.get(url(node, "node-files")).content.decode()


def test_the_files_of_a_node_of_another_account_are_not_found(stranger, node, node_files):
    assert stranger.get(url(node, "node-files")).status_code == 404
    assert stranger.get(url(node, "node-output") + "?file=shared/model.bin").status_code == 404


def test_the_files_page_costs_a_fixed_number_of_queries(
    op, node, node_files, django_assert_num_queries
):
    # session, user, membership, pool, node; the files come from the storage
    with django_assert_num_queries(5):
        op.get(url(node, "node-files"))


def test_a_failed_start_task_says_how_to_run_it_again(op, node):
    hint = op.get(url(node)).content.decode().split('id="start-task-hint">')[1].split("</div>")[0]
    assert "takes no task until its start task succeeds" in hint and "reboot or reimage" in hint
