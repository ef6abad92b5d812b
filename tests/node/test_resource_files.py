"""A task's resourceFiles are downloaded into its working directory before its command
runs, as on Batch (Azure's Python quickstart: each task `cat`s the blob it was given), by
real agents from a local HTTP server standing in for Blob storage; a download that fails
completes the task with Batch's failure code, without a retry and without its SAS token."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.models import ComputeNode, Task
from tasks.node import resource_files
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory

SAS = "se=2030-01-01&sp=r&sig=SECRETSIGNATURE"
BLOBS = {
    "input/taskdata0.txt": b"the first data file\n",
    "input/sub/dir/b.bin": b"\x00\x01binary",
    "lib/a.txt": b"blob a\n",
    "lib/deep/b.txt": b"blob b\n",
    "other/c.txt": b"not listed\n",
}


class Storage(BaseHTTPRequestHandler):
    """Blob storage as a blob SAS URL sees it: Get Blob (containers, listed with
    azure-storage-blob, are tested against Azurite: tests/storage/test_task_files.py)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if query.get("sig") != ["SECRETSIGNATURE"]:
            return self._send(403, b"AuthenticationFailed")
        data = BLOBS.get(url.path.lstrip("/"))
        return self._send(200, data) if data is not None else self._send(404, b"BlobNotFound")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def storage():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def blob(storage: str, name: str) -> str:
    return f"{storage}/{name}?{SAS}"


def make_pool(pool_id: str, **spec):
    return add_pool(AccountFactory(), spec={"id": pool_id, "vmSize": "local", **spec})


def completed(task: Task) -> Task:
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=30,
        message=f"task {task.task_id} to complete",
    )
    return task


def test_the_quickstart_task_cats_the_file_it_was_given(agents, transactional_db, storage):
    pool = make_pool("rf-quickstart")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "Task0",
        '/bin/bash -c "cat taskdata0.txt; stat -c %a sub/dir/b.bin"',
        resourceFiles=[
            {"httpUrl": blob(storage, "input/taskdata0.txt"), "filePath": "taskdata0.txt"},
            {
                "httpUrl": blob(storage, "input/sub/dir/b.bin"),
                "filePath": "sub/dir/b.bin",
                "fileMode": "0600",
            },
        ],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert (task.result, task.exit_code) == ("success", 0), task.failure_info
    root = (
        Path(ComputeNode.objects.get(pool=pool, node_id="n1").root_dir)
        / "workitems/job1/job-1/Task0"
    )
    assert (root / "stdout.txt").read_text() == "the first data file\n600\n"
    assert (root / "wd/sub/dir/b.bin").read_bytes() == b"\x00\x01binary"
    assert oct((root / "wd/taskdata0.txt").stat().st_mode & 0o777) == oct(
        resource_files.DEFAULT_MODE
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [("input/missing.txt", "BlobNotFound"), ("input/taskdata0.txt?sig=wrong", "BlobAccessDenied")],
)
def test_a_download_that_fails_completes_the_task_with_batchs_code_and_no_retry(
    agents, transactional_db, storage, name, code
):
    pool = make_pool("rf-fails")
    job = make_job(pool.account, pool)
    url = f"{storage}/{name}" if "?" in name else blob(storage, name)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'echo ran > ran.txt'",
        constraints={"maxTaskRetryCount": 2},
        resourceFiles=[{"httpUrl": url, "filePath": "data.txt"}],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert (task.result, task.exit_code, task.retry_count) == ("failure", None, 0)
    assert (task.failure_info["category"], task.failure_info["code"]) == ("usererror", code)
    assert (
        "SECRETSIGNATURE" not in task.failure_info["message"]
        and "/input/" in task.failure_info["message"]
    )
    root = (
        Path(ComputeNode.objects.get(pool=pool, node_id="n1").root_dir) / "workitems/job1/job-1/t1"
    )
    assert not (root / "wd/ran.txt").exists(), "the command ran without its file"
    stderr = (root / "stderr.txt").read_text()
    assert task.failure_info["message"] in stderr and "SECRETSIGNATURE" not in stderr


def test_the_start_task_gets_its_resource_files_before_it_runs(agents, transactional_db, storage):
    pool = make_pool(
        "rf-start",
        startTask={
            "commandLine": "/bin/sh -c 'cat setup/taskdata0.txt'",
            "waitForSuccess": True,
            "resourceFiles": [
                {"httpUrl": blob(storage, "input/taskdata0.txt"), "filePath": "setup/taskdata0.txt"}
            ],
        },
    )
    agents.start(pool, "n1", slots=1)
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    assert (node.state, node.start_task_info["result"]) == ("idle", "success"), node.start_task_info
    assert (Path(node.root_dir) / "startup/stdout.txt").read_text() == "the first data file\n"


def test_a_start_task_whose_file_is_missing_fails_the_node_with_the_code(
    agents, transactional_db, storage
):
    pool = make_pool(
        "rf-start-fails",
        startTask={
            "commandLine": "/bin/true",
            "waitForSuccess": True,
            "maxTaskRetryCount": 3,
            "resourceFiles": [{"httpUrl": blob(storage, "input/missing.txt"), "filePath": "x"}],
        },
    )
    agents.start(pool, "n1", slots=1, ready=("starttaskfailed",))
    info = ComputeNode.objects.get(pool=pool, node_id="n1").start_task_info
    assert (info["result"], info["failureInfo"]["code"], info["retryCount"]) == (
        "failure",
        "BlobNotFound",
        0,
    )


# --- placing files, in this process ------------------------------------------------------


@pytest.mark.parametrize("file_path", ["../outside.txt", "/etc/x", "a/../../outside.txt"])
def test_a_file_path_may_not_leave_its_directory(tmp_path, storage, file_path):
    (tmp_path / "wd").mkdir()
    with pytest.raises(resource_files.Failed) as failed:
        resource_files.place(
            str(tmp_path / "wd"), {"httpUrl": blob(storage, "lib/a.txt"), "filePath": file_path}
        )
    assert failed.value.code == "ResourceFileCreateFailed"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["wd"]


def test_links_a_task_planted_are_never_followed(tmp_path, storage):
    wd, outside = tmp_path / "wd", tmp_path / "outside"
    wd.mkdir()
    outside.mkdir()
    (outside / "a.txt").write_text("keep")
    os.symlink(outside / "a.txt", wd / "a.txt")  # where the file goes: replaced
    resource_files.place(str(wd), {"httpUrl": blob(storage, "lib/a.txt"), "filePath": "a.txt"})
    assert (wd / "a.txt").read_text() == "blob a\n" and not (wd / "a.txt").is_symlink()
    os.symlink(outside, wd / "dir")  # where a directory is expected: refused
    with pytest.raises(resource_files.Failed) as failed:
        resource_files.place(
            str(wd), {"httpUrl": blob(storage, "lib/a.txt"), "filePath": "dir/a.txt"}
        )
    assert failed.value.code == "ResourceFileCreateFailed"
    assert (outside / "a.txt").read_text() == "keep" and sorted(
        p.name for p in outside.iterdir()
    ) == ["a.txt"]


def test_a_url_that_is_not_http_is_refused(tmp_path):
    with pytest.raises(resource_files.Failed) as failed:
        resource_files.place(str(tmp_path), {"httpUrl": "file:///etc/passwd", "filePath": "p"})
    assert failed.value.code == "BlobDownloadMiscError" and not (tmp_path / "p").exists()
    with pytest.raises(resource_files.Failed) as failed:
        resource_files.place(str(tmp_path), {"storageContainerUrl": "file:///etc", "filePath": "p"})
    assert failed.value.code == "ResourceContainerListMiscError" and not (tmp_path / "p").exists()


def test_the_manifest_is_read_once_and_removed(tmp_path, storage):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps([[str(tmp_path), {"httpUrl": blob(storage, "lib/a.txt"), "filePath": "a.txt"}]])
    )
    assert resource_files.main(["resource_files.py", str(manifest)]) == 0
    assert (tmp_path / "a.txt").read_text() == "blob a\n" and not manifest.exists()


def test_a_multi_instance_task_gets_common_files_on_every_node_and_its_own_on_the_primarys(
    agents, transactional_db, storage
):
    pool = make_pool("rf-multi")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "mi",
        "/bin/sh -c 'cat taskdata0.txt'",
        resourceFiles=[
            {"httpUrl": blob(storage, "input/taskdata0.txt"), "filePath": "taskdata0.txt"}
        ],
        multiInstanceSettings={
            "numberOfInstances": 2,
            "coordinationCommandLine": "/bin/sh -c 'cat $AZ_BATCH_TASK_SHARED_DIR/common.txt'",
            "commonResourceFiles": [
                {"httpUrl": blob(storage, "lib/a.txt"), "filePath": "common.txt"}
            ],
        },
    )
    agents.start(pool, "n1", slots=1)
    agents.start(pool, "n2", slots=1)
    assert completed(task).result == "success", task.failure_info
    primary = task.node_name
    for node_id in ("n1", "n2"):
        task_dir = (
            Path(ComputeNode.objects.get(pool=pool, node_id=node_id).root_dir)
            / "workitems/job1/job-1/mi"
        )
        assert (task_dir / "common.txt").read_text() == "blob a\n"
        assert (task_dir / "wd/taskdata0.txt").exists() == (node_id == primary)
    primary_dir = (
        Path(ComputeNode.objects.get(pool=pool, node_id=primary).root_dir)
        / "workitems/job1/job-1/mi"
    )
    assert (primary_dir / "stdout.txt").read_text() == "blob a\nthe first data file\n"
