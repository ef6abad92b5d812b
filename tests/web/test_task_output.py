"""The output viewer and the task's files: a tail that reads only the end of a large file,
follows a running task and stops once it is complete."""

import pytest
from django.urls import reverse

from tasks.web import files
from tests.factories import TaskFactory
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_dir(tmp_path):
    (tmp_path / "wd").mkdir()
    (tmp_path / "stdout.txt").write_text("line one\nline two\n")
    (tmp_path / "stderr.txt").write_text("oops\n")
    (tmp_path / "wd" / "result.csv").write_text("a,b\n")
    return tmp_path


def test_shows_stdout_and_stderr_of_a_task(op, job, task_dir):
    task = TaskFactory(job=job, running=True, task_root_directory=str(task_dir))
    assert "line two" in op.get(task_url("task-output", task)).content.decode()
    assert "oops" in op.get(task_url("task-output", task, file="stderr.txt")).content.decode()


def test_tail_of_a_large_file_reads_only_its_end(job, tmp_path):
    big = tmp_path / "stdout.txt"
    with big.open("w") as handle:
        for i in range(400_000):
            handle.write(f"line {i:07d}\n")
    task = TaskFactory(job=job, task_root_directory=str(tmp_path))
    tail = files.tail(task, "stdout.txt", max_bytes=4096)
    assert tail.size == big.stat().st_size and tail.truncated
    assert len(tail.text) <= 4096 and tail.text.endswith("line 0399999\n")
    assert tail.text.startswith("line ")  # starts at a line boundary


def test_follows_a_running_task_and_stops_when_it_completes(op, job, task_dir):
    task = TaskFactory(job=job, running=True, task_root_directory=str(task_dir))
    live = op.get(task_url("task-output", task), headers=HTMX)
    assert live.status_code == 200 and "every 2s" in live.content.decode()
    (task_dir / "stdout.txt").write_text("line one\nline two\nline three\n")
    task.state = "completed"
    task.save()
    final = op.get(task_url("task-output", task), headers=HTMX)
    assert final.status_code == 286 and "line three" in final.content.decode()


def test_lists_the_task_files_with_downloads(op, job, task_dir):
    task = TaskFactory(job=job, succeeded=True, task_root_directory=str(task_dir))
    body = op.get(task_url("task", task)).content.decode()
    assert "wd/result.csv" in body
    url = reverse("web:task-file", args=[job.account.name, job.job_id, task.task_id, "wd/result.csv"])
    r = op.get(url + "?download=1")
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"a,b\n"
    assert "attachment" in r["Content-Disposition"]


def test_never_serves_a_file_outside_the_task_directory(op, job, task_dir):
    (task_dir.parent / "secret.txt").write_text("no")
    task = TaskFactory(job=job, task_root_directory=str(task_dir))
    url = task_url("task", task) + "files/../secret.txt"
    assert op.get(url).status_code == 404
    assert files.resolve(task, "../secret.txt") is None


def test_says_when_there_is_no_output_yet(op, job):
    task = TaskFactory(job=job)
    assert "No stdout.txt yet." in op.get(task_url("task-output", task)).content.decode()
