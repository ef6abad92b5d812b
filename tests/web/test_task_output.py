"""The output viewer and the task's files, read through the task-file storage: a tail that
reads only the end of a large file, follows a running task and stops once it completes."""

import pytest
from django.urls import reverse

from tasks.nodehost.storage import TaskFiles
from tasks.web import files
from tests.factories import TaskFactory
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage(settings, tmp_path):
    """The task-file storage in a temporary directory; write(task, name, text) puts a file
    where a node on this machine would."""
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }

    def write(task, name: str, text: str):
        path = tmp_path / TaskFiles.of_task(task).prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


def ran(job, **kw):
    return TaskFactory(
        job=job, node_name="node-1", pool_id="p1", task_root_directory="/nodes/node-1/t", **kw
    )


def test_shows_stdout_and_stderr_of_a_task(op, job, storage):
    task = ran(job, running=True)
    storage(task, "stdout.txt", "line one\nline two\n")
    storage(task, "stderr.txt", "oops\n")
    assert "line two" in op.get(task_url("task-output", task)).content.decode()
    assert "oops" in op.get(task_url("task-output", task, file="stderr.txt")).content.decode()


def test_tail_of_a_large_file_reads_only_its_end(job, storage):
    task = ran(job)
    big = storage(task, "stdout.txt", "".join(f"line {i:07d}\n" for i in range(400_000)))
    tail = files.tail(task, "stdout.txt", max_bytes=4096)
    assert tail.size == big.stat().st_size and tail.truncated
    assert len(tail.text) <= 4096 and tail.text.endswith("line 0399999\n")
    assert tail.text.startswith("line ")  # starts at a line boundary


def test_the_output_page_is_the_log_viewer_reading_on_from_the_tail(op, job, storage):
    task = ran(job, running=True)
    storage(task, "stdout.txt", "line one\n")
    body = op.get(task_url("task-output", task)).content.decode()
    assert "data-log" in body and 'data-end="9"' in body and 'data-live="true"' in body
    assert task_url("task-output-chunk", task) in body


def test_lists_the_task_files_with_downloads(op, job, storage):
    task = ran(job, succeeded=True)
    storage(task, "stdout.txt", "hi\n")
    storage(task, "wd/result.csv", "a,b\n")
    assert "wd/result.csv" in op.get(task_url("task", task)).content.decode()
    url = reverse(
        "web:task-file", args=[job.account.name, job.job_id, task.task_id, "wd/result.csv"]
    )
    r = op.get(url + "?download=1")
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"a,b\n"
    assert r["Content-Disposition"] == 'attachment; filename="result.csv"'


def test_never_serves_a_file_outside_the_task_directory(op, job, storage):
    task = ran(job)
    storage(task, "stdout.txt", "mine\n")
    storage(task, "../other-task/stdout.txt", "not mine\n")
    assert op.get(task_url("task", task) + "files/../other-task/stdout.txt").status_code == 404
    assert files.open_file(task, "../other-task/stdout.txt") is None


def test_a_task_that_never_ran_has_no_output_and_no_files(op, job, storage):
    task = TaskFactory(job=job)
    assert "No stdout.txt yet." in op.get(task_url("task-output", task)).content.decode()
    assert list(files.listing(task)) == []


def test_files_of_a_task_whose_retention_passed_are_gone(op, job, storage):
    task = ran(job, succeeded=True, files_cleaned=True)
    storage(task, "stdout.txt", "stale\n")
    assert "stale" not in op.get(task_url("task-output", task)).content.decode()


def test_a_live_refresh_brings_the_file_list_up_to_date(op, job, storage):
    task = ran(job, running=True)
    before = op.get(task_url("task", task), headers=HTMX).content.decode()
    assert 'id="task-files" hx-swap-oob="true"' in before and "result.csv" not in before
    storage(task, "wd/result.csv", "a,b\n")
    after = op.get(task_url("task", task), headers=HTMX).content.decode()
    assert 'id="task-files" hx-swap-oob="true"' in after and "wd/result.csv" in after
