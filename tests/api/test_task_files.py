"""The task file calls (REFERENCE §11) through the signed API client."""

import json
import os
from email.utils import formatdate
from urllib.parse import quote, unquote

import pytest

from tasks.models import Task
from tests.conftest import error_code
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def nodes_dir(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    return tmp_path


@pytest.fixture
def task(job, nodes_dir):
    """A task that ran on node n1 and left stdout.txt, stderr.txt and wd/ files."""
    task = TaskFactory(
        job=job,
        task_id="T1",
        succeeded=True,
        node_name="n1",
        pool_id="p",
        task_root_directory=f"/elsewhere/n1/workitems/{job.job_id}/job-1/T1",
    )
    root = nodes_dir / job.account.name / "p" / "n1" / "workitems" / job.job_id / "job-1" / "T1"
    (root / "wd" / "out").mkdir(parents=True)
    (root / "stdout.txt").write_bytes(b"0123456789")
    (root / "stderr.txt").write_bytes(b"")
    (root / "wd" / "out" / "r.txt").write_bytes(b"result")
    return task


def url(task, path=""):
    base = f"/jobs/{task.job.job_id}/tasks/{task.task_id}/files"
    return f"{base}/{quote(path, safe='')}" if path else base


def names(response):
    return [f["name"] for f in json.loads(response.content)["value"]]


def test_lists_the_top_level_by_default_and_everything_recursively(batch, task):
    r = batch.get(url(task))
    assert r.status_code == 200, r.content
    body = json.loads(r.content)
    assert names(r) == ["stderr.txt", "stdout.txt", "wd"]
    stdout = body["value"][1]
    assert stdout["isDirectory"] is False
    assert stdout["url"] == f"http://testserver/jobs/{task.job.job_id}/tasks/T1/files/stdout.txt"
    assert stdout["properties"]["contentLength"] == "10" and "lastModified" in stdout["properties"]
    assert "properties" not in body["value"][2]
    r = batch.get(url(task), params={"recursive": "true"})
    assert names(r) == ["stderr.txt", "stdout.txt", "wd", "wd/out", "wd/out/r.txt"]


def test_a_name_filter_keeps_only_matching_paths(batch, task):
    r = batch.get(url(task), params={"recursive": "true", "$filter": "startswith(name,'wd/')"})
    assert names(r) == ["wd/out", "wd/out/r.txt"]
    r = batch.get(url(task), params={"$filter": "name eq 'x'"})
    assert r.status_code == 400 and error_code(r) == "InvalidQueryParameterValue"


def test_a_long_listing_pages_with_next_links(batch, task):
    r = batch.get(url(task), params={"recursive": "true", "maxresults": "2"})
    body = json.loads(r.content)
    assert names(r) == ["stderr.txt", "stdout.txt"] and "recursive=true" in body["odata.nextLink"]
    seen = names(r)
    for _ in range(5):
        if "odata.nextLink" not in body:
            break
        path, query = body["odata.nextLink"].split("testserver", 1)[1].split("?", 1)
        params = {unquote(k): unquote(v) for k, v in (p.split("=", 1) for p in query.split("&"))}
        params.pop("api-version")
        r = batch.get(path, params=params)
        body = json.loads(r.content)
        seen += names(r)
    assert seen == ["stderr.txt", "stdout.txt", "wd", "wd/out", "wd/out/r.txt"]


def test_get_returns_the_bytes_and_a_range_still_with_200(batch, task):
    r = batch.get(url(task, "stdout.txt"))
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"0123456789"
    assert r["Content-Type"] == "application/octet-stream" and r["Content-Length"] == "10"
    r = batch.get(url(task, "stdout.txt"), headers={"ocp-range": "bytes=2-4"})
    assert (
        r.status_code == 200
        and b"".join(r.streaming_content) == b"234"
        and r["Content-Length"] == "3"
    )
    r = batch.get(url(task, "stdout.txt"), headers={"ocp-range": "bytes=7-"})
    assert b"".join(r.streaming_content) == b"789"
    r = batch.get(url(task, "wd/out/r.txt"))
    assert b"".join(r.streaming_content) == b"result"


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        ("bytes=10-12", 416, "InvalidRange"),
        ("bytes=5-2", 400, "InvalidHeaderValue"),
        ("lines=1-2", 400, "InvalidHeaderValue"),
    ],
)
def test_a_bad_range_is_refused(batch, task, header, status, code):
    r = batch.get(url(task, "stdout.txt"), headers={"ocp-range": header})
    assert r.status_code == status and error_code(r) == code


def test_head_answers_the_properties_the_sdks_read(batch, task):
    r = batch.head(url(task, "stdout.txt"))
    assert r.status_code == 200 and r.content == b""
    assert r["Content-Length"] == "10" and r["ocp-batch-file-isdirectory"] == "false"
    assert (
        r["ocp-batch-file-url"].endswith("/files/stdout.txt") and r["ocp-batch-file-mode"] == "0644"
    )
    assert (
        r["ocp-creation-time"].endswith("GMT") and r["Last-Modified"].endswith("GMT") and r["ETag"]
    )
    r = batch.head(url(task, "wd"))
    assert r.status_code == 200 and r["ocp-batch-file-isdirectory"] == "true"


def test_if_modified_since_answers_304_for_an_unchanged_file(batch, task):
    later = formatdate(usegmt=True, timeval=os.path.getmtime(__file__) + 10**8)
    r = batch.get(url(task, "stdout.txt"), headers={"If-Modified-Since": later})
    assert r.status_code == 304


@pytest.mark.parametrize("path", ["nope.txt", "wd/nope", "../T2/stdout.txt", "wd/../../x"])
def test_a_missing_or_escaping_path_is_file_not_found(batch, task, path):
    r = batch.get(url(task, path))
    assert r.status_code == 404 and error_code(r) == "FileNotFound"


def test_get_of_a_directory_is_refused(batch, task):
    r = batch.get(url(task, "wd"))
    assert r.status_code == 409 and error_code(r) == "OperationInvalidForCurrentState"


def test_delete_removes_a_file_and_a_directory_only_with_recursive(batch, task, nodes_dir):
    assert batch.delete(url(task, "stderr.txt")).status_code == 200
    assert batch.get(url(task, "stderr.txt")).status_code == 404
    r = batch.delete(url(task, "wd"))
    assert r.status_code == 409 and error_code(r) == "OperationInvalidForCurrentState"
    assert batch.delete(url(task, "wd"), params={"recursive": "true"}).status_code == 200
    assert names(batch.get(url(task))) == ["stdout.txt"]


def test_a_task_that_never_ran_has_no_files_yet(batch, job, nodes_dir):
    task = TaskFactory(job=job)
    r = batch.get(url(task))
    assert r.status_code == 409 and error_code(r) == "TaskFilesUnavailable"


def test_the_files_of_a_task_past_its_retention_are_cleaned_up(batch, task):
    Task.objects.filter(pk=task.pk).update(files_cleaned=True)
    for response in (
        batch.get(url(task)),
        batch.get(url(task, "stdout.txt")),
        batch.delete(url(task, "stdout.txt")),
    ):
        assert response.status_code == 409 and error_code(response) == "TaskFilesCleanedup"


def test_an_unknown_task_is_task_not_found(batch, job, nodes_dir):
    r = batch.get(f"/jobs/{job.job_id}/tasks/ghost/files")
    assert r.status_code == 404 and error_code(r) == "TaskNotFound"


# --- what a hostile task leaves in its directory ------------------------------------------


@pytest.fixture
def outside(tmp_path_factory):
    """A secret file and a folder of someone else's files, outside every task directory."""
    root = tmp_path_factory.mktemp("outside")
    (root / "secret_key").write_text("the host's secret\n")
    (root / "theirs").mkdir()
    (root / "theirs" / "keep.txt").write_text("must survive\n")
    return root


def task_dir(task, nodes_dir):
    return (
        nodes_dir
        / task.job.account.name
        / "p"
        / "n1"
        / "workitems"
        / task.job.job_id
        / "job-1"
        / task.task_id
    )


def test_a_link_to_a_secret_is_listed_but_its_target_never_served(batch, task, nodes_dir, outside):
    (task_dir(task, nodes_dir) / "wd" / "x").symlink_to(outside / "secret_key")
    r = batch.get(url(task, "wd/x"))
    assert r.status_code == 409 and error_code(r) == "OperationInvalidForCurrentState"
    assert b"secret" not in r.content
    entry = next(
        f
        for f in json.loads(batch.get(url(task), params={"recursive": "true"}).content)["value"]
        if f["name"] == "wd/x"
    )
    assert entry["isDirectory"] is False and entry["properties"]["fileMode"] == "0777"
    head = batch.head(url(task, "wd/x"))
    assert head.status_code == 200 and head["ocp-batch-file-isdirectory"] == "false"


def test_nothing_is_served_through_a_linked_directory(batch, task, nodes_dir, outside):
    (task_dir(task, nodes_dir) / "wd" / "theirs").symlink_to(outside / "theirs")
    r = batch.get(url(task, "wd/theirs/keep.txt"))
    assert r.status_code == 404 and error_code(r) == "FileNotFound"


def test_a_recursive_listing_of_link_loops_ends_and_shows_each_link_once(batch, task, nodes_dir):
    wd = task_dir(task, nodes_dir) / "wd"
    (wd / "a").symlink_to(".")
    (wd / "b").symlink_to(".")
    r = batch.get(url(task), params={"recursive": "true"})
    assert names(r) == ["stderr.txt", "stdout.txt", "wd", "wd/a", "wd/b", "wd/out", "wd/out/r.txt"]
    assert "odata.nextLink" not in json.loads(r.content)


def test_a_recursive_delete_never_empties_what_a_link_points_to(batch, task, nodes_dir, outside):
    (task_dir(task, nodes_dir) / "wd" / "theirs").symlink_to(outside / "theirs")
    assert batch.delete(url(task, "wd"), params={"recursive": "true"}).status_code == 200
    assert (outside / "theirs" / "keep.txt").read_text() == "must survive\n"
    assert names(batch.get(url(task))) == ["stderr.txt", "stdout.txt"]


def test_deleting_a_linked_directory_removes_only_the_link(batch, task, nodes_dir, outside):
    (task_dir(task, nodes_dir) / "wd" / "theirs").symlink_to(outside / "theirs")
    assert batch.delete(url(task, "wd/theirs"), params={"recursive": "true"}).status_code == 200
    assert (outside / "theirs" / "keep.txt").exists()
    r = batch.delete(url(task, "wd/theirs/keep.txt"))
    assert r.status_code == 404 and error_code(r) == "FileNotFound"


def test_a_path_with_a_nul_names_no_resource(batch, task):
    # Refused before any lookup (tasks.middleware): the answer of any unknown Batch path.
    r = batch.get(url(task, "wd/a\x00b"))
    assert r.status_code == 400 and error_code(r) == "InvalidUri"


def policy(response) -> set[str]:
    return {d.strip() for d in response["Content-Security-Policy"].split(";")}


def test_file_responses_are_sandboxed_and_never_sniffed(batch, task):
    for response in (batch.get(url(task, "stdout.txt")), batch.head(url(task, "stdout.txt"))):
        assert policy(response) == {"default-src 'none'", "sandbox"}
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Type"] == "application/octet-stream"


def test_a_listing_cut_short_by_its_budget_still_pages_through_everything(batch, task, monkeypatch):
    from tasks.nodehost import storage

    monkeypatch.setattr(storage, "MAX_VISITED", 2)
    seen, params = [], {"recursive": "true"}
    for _ in range(10):
        body = json.loads(batch.get(url(task), params=params).content)
        seen += [f["name"] for f in body["value"]]
        if "odata.nextLink" not in body:
            break
        query = body["odata.nextLink"].split("?", 1)[1]
        params = {unquote(k): unquote(v) for k, v in (p.split("=", 1) for p in query.split("&"))}
        params.pop("api-version")
    assert seen == ["stderr.txt", "stdout.txt", "wd", "wd/out", "wd/out/r.txt"]
