"""The log viewer's server side: chunks of a file (the tail, what came since, what came
before), coloured and escaped; the first file to open; each instance of a multi-instance
task with its own output; a task deleted while watched."""

import json

import pytest

from tasks.nodehost import layout
from tasks.nodehost.storage import TaskFiles
from tasks.web import files
from tests.factories import SubTaskFactory, TaskFactory
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def disk(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }

    def write(prefix: str, name: str, data: bytes | str):
        path = tmp_path / prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return write


def ran(job, **kw):
    return TaskFactory(
        job=job, node_name="node-1", pool_id="p1", task_root_directory="/nodes/node-1/t", **kw
    )


def chunk(op, task, **params) -> dict:
    r = op.get(task_url("task-output-chunk", task, **params))
    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert r["Cache-Control"] == "no-store"
    return json.loads(r.content)


# --- reading a file in chunks -------------------------------------------------------------


def test_follow_reads_only_what_came_after_the_offset(op, job, disk):
    task = ran(job, running=True)
    prefix = TaskFiles.of_task(task).prefix
    disk(prefix, "stdout.txt", "one\n")
    first = chunk(op, task)
    assert (first["start"], first["end"], first["html"], first["live"]) == (0, 4, "one\n", True)
    disk(prefix, "stdout.txt", "one\ntwo\n")
    more = chunk(op, task, after=first["end"])
    assert (more["start"], more["end"], more["html"], more["reset"]) == (4, 8, "two\n", False)
    assert chunk(op, task, after=8)["html"] == ""


def test_a_reader_too_far_behind_or_past_the_end_gets_the_tail_to_replace_with(job, disk):
    task = ran(job, running=True)
    where = TaskFiles.of_task(task)
    disk(where.prefix, "stdout.txt", "".join(f"line {i:05d}\n" for i in range(2000)))
    behind = files.read_chunk(where, "stdout.txt", after=0, max_bytes=1024)
    assert behind.reset and behind.end == 22000 and behind.text.startswith("line ")
    shrunk = files.read_chunk(where, "stdout.txt", after=50_000, max_bytes=1024)
    assert shrunk.reset and shrunk.end == 22000


def test_load_earlier_reads_the_chunk_before_from_a_line_boundary(job, disk):
    task = ran(job, succeeded=True)
    where = TaskFiles.of_task(task)
    disk(where.prefix, "stdout.txt", "".join(f"line {i:05d}\n" for i in range(2000)))
    tail = files.read_chunk(where, "stdout.txt", max_bytes=1100)
    assert tail.end == 22000 and tail.text.startswith("line 01900") and tail.start == 1900 * 11
    earlier = files.read_chunk(where, "stdout.txt", before=tail.start, max_bytes=1100)
    assert (
        earlier.end == tail.start
        and earlier.text.startswith("line ")
        and earlier.text.endswith("line 01899\n")
    )
    first = files.read_chunk(where, "stdout.txt", before=1100, max_bytes=5000)
    assert first.start == 0 and first.text.startswith("line 00000\n")


def test_a_growing_file_is_read_up_to_a_whole_character_and_escape_sequence(job, disk):
    task = ran(job, running=True)
    where = TaskFiles.of_task(task)
    disk(where.prefix, "stdout.txt", "é".encode()[:1])
    assert files.read_chunk(where, "stdout.txt", growing=True).end == 0
    disk(where.prefix, "stdout.txt", "ok \x1b[3")
    part = files.read_chunk(where, "stdout.txt", growing=True)
    assert (part.text, part.end) == ("ok ", 3)
    disk(where.prefix, "stdout.txt", "ok \x1b[31mred")
    assert files.read_chunk(where, "stdout.txt", after=3, growing=True).text == "\x1b[31mred"


def test_colours_carry_over_from_the_state_the_reader_sends(op, job, disk):
    task = ran(job, running=True)
    prefix = TaskFiles.of_task(task).prefix
    disk(prefix, "stdout.txt", "\x1b[31mred ")
    first = chunk(op, task)
    assert first["sgr"] == "31"
    disk(prefix, "stdout.txt", "\x1b[31mred still red\n")
    more = chunk(op, task, after=first["end"], sgr=first["sgr"])
    assert more["html"] == '<span class="ansi-f1">still red</span>\n'


def test_what_a_task_wrote_is_escaped_in_the_page_and_in_the_chunks(op, job, disk):
    task = ran(job, running=True)
    disk(TaskFiles.of_task(task).prefix, "stdout.txt", '<img src=x onerror="alert(1)">\n')
    page = op.get(task_url("task", task)).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert chunk(op, task)["html"].startswith("&lt;img")


def test_a_binary_file_is_not_shown(op, job, disk):
    task = ran(job, succeeded=True)
    disk(TaskFiles.of_task(task).prefix, "stdout.txt", b"\x00\x01binary")
    got = chunk(op, task)
    assert got["binary"] and got["html"] == ""


@pytest.mark.parametrize("value", ["-1", "1e3", "x", "9" * 30])
def test_a_bad_offset_is_no_offset(op, job, disk, value):
    task = ran(job, running=True)
    disk(TaskFiles.of_task(task).prefix, "stdout.txt", "hello\n")
    assert chunk(op, task, after=value)["html"] == "hello\n"


# --- which file, which instance -----------------------------------------------------------


def test_each_output_files_size_is_on_its_tab(op, job, disk):
    task = ran(job, succeeded=True)
    prefix = TaskFiles.of_task(task).prefix
    disk(prefix, "stdout.txt", "x" * 2048)
    body = op.get(task_url("task", task)).content.decode()
    assert 'data-size-of="stdout.txt">2.0\xa0KB<' in body and 'data-size-of="stderr.txt">—<' in body
    assert chunk(op, task)["sizes"] == {"stdout.txt": 2048, "stderr.txt": None}


def test_a_failed_task_with_an_empty_stdout_opens_on_stderr(op, job, disk):
    task = ran(job, failed=True)
    prefix = TaskFiles.of_task(task).prefix
    disk(prefix, "stdout.txt", "")
    disk(prefix, "stderr.txt", "Traceback: boom\n")
    body = op.get(task_url("task", task)).content.decode()
    assert 'data-name="stderr.txt"' in body and "Traceback: boom" in body
    assert 'aria-selected="true" tabindex="0" class="current">stderr.txt' in body


@pytest.mark.parametrize(
    ("trait", "stdout", "opens"),
    [("succeeded", "", "stdout.txt"), ("failed", "some output\n", "stdout.txt")],
)
def test_otherwise_it_opens_on_stdout(op, job, disk, trait, stdout, opens):
    task = ran(job, **{trait: True})
    prefix = TaskFiles.of_task(task).prefix
    disk(prefix, "stdout.txt", stdout)
    disk(prefix, "stderr.txt", "warning\n")
    assert f'data-name="{opens}"' in op.get(task_url("task", task)).content.decode()


def test_each_subtask_has_its_own_output_read_from_its_node(op, job, disk):
    task = ran(
        job,
        multi_instance=True,
        number_of_instances=3,
        state="running",
        spec={
            "multiInstanceSettings": {
                "numberOfInstances": 3,
                "coordinationCommandLine": "/bin/coord",
            }
        },
    )
    SubTaskFactory(
        task=task,
        subtask_id=1,
        state="completed",
        node_name="node-2",
        pool_id="p1",
        task_root_directory="/nodes/node-2/t",
        exit_code=0,
        result="success",
    )
    SubTaskFactory(
        task=task,
        subtask_id=2,
        state="completed",
        node_name="node-3",
        pool_id="p1",
        task_root_directory="/nodes/node-3/t",
        exit_code=139,
        result="failure",
        failure_info={"code": "FailureExitCode", "message": "exit 139"},
    )
    disk(TaskFiles.of_task(task).prefix, "stdout.txt", "primary output\n")
    node3 = layout.node_key(job.account.name, "p1", "node-3")
    disk(
        layout.storage_key(node3, job.job_id, task.task_id), "stderr.txt", "segfault in subtask 2\n"
    )
    got = chunk(op, task, instance="2")
    assert (got["instance"], got["name"], got["html"]) == (
        "2",
        "stderr.txt",
        "segfault in subtask 2\n",
    )
    assert not got["live"]  # that subtask is over, whatever the primary does
    page = op.get(task_url("task", task, instance="2")).content.decode()
    assert "segfault in subtask 2" in page and 'data-log-instance="2" aria-current="true"' in page
    assert chunk(op, task)["html"] == "primary output\n"


def test_a_running_multi_instance_task_says_which_command_each_instance_runs(op, job):
    task = ran(
        job,
        multi_instance=True,
        number_of_instances=3,
        state="running",
        spec={
            "multiInstanceSettings": {
                "numberOfInstances": 3,
                "coordinationCommandLine": "/bin/coord",
            }
        },
    )
    SubTaskFactory(task=task, subtask_id=1, state="completed", exit_code=0, result="success")
    SubTaskFactory(task=task, subtask_id=2, state="running")
    body = op.get(task_url("task", task), headers=HTMX).content.decode()
    assert "coordination command; the main command waits for 1 subtask(s)" in body
    assert "coordination command running" in body and "coordination done" in body
    SubTaskFactory._meta.model.objects.filter(task=task, subtask_id=2).update(
        state="completed", exit_code=0, result="success"
    )
    assert "main command running" in op.get(task_url("task", task), headers=HTMX).content.decode()


# --- a task that is gone ------------------------------------------------------------------


def test_a_watched_task_deleted_meanwhile_says_so_and_polling_stops(op, job):
    task = ran(job, running=True)
    url = task_url("task", task)
    task.delete()
    r = op.get(url, headers=HTMX)
    body = r.content.decode()
    assert (
        r.status_code == 286
        and "was deleted while you were watching" in body
        and "Live" not in body
    )
    assert f'href="/web/{job.account.name}/jobs/{job.job_id}/"' in body


def test_a_missing_task_is_a_404_that_links_back_to_its_job(op, job):
    r = op.get(f"/web/{job.account.name}/jobs/{job.job_id}/tasks/nope/")
    assert r.status_code == 404
    assert f'href="/web/{job.account.name}/jobs/{job.job_id}/"' in r.content.decode()


def test_the_chunks_of_a_deleted_task_are_a_404(op, job):
    task = ran(job, running=True)
    url = task_url("task-output-chunk", task)
    task.delete()
    assert op.get(url).status_code == 404


def test_a_stranger_reads_no_chunk(stranger, job, disk):
    task = ran(job, running=True)
    disk(TaskFiles.of_task(task).prefix, "stdout.txt", "secret\n")
    assert stranger.get(task_url("task-output-chunk", task)).status_code == 404
