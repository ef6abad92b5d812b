"""Tasks that download their resourceFiles from and upload their outputFiles to real Blob
storage (Azurite), run by real agents: the blobs' bytes are checked, and each failure
completes the task with Batch's failure information (TaskFailureInformationCodes,
category usererror), without a retry and without a SAS signature anywhere it is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.models import ComputeNode, Task
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.execution import add, fresh, make_job
from tests.factories import AccountFactory
from tests.storage.azurite import ACCOUNT, KEY


def make_pool(pool_id: str, **spec):
    return add_pool(AccountFactory(), spec={"id": pool_id, "vmSize": "local", **spec})


def completed(task: Task) -> Task:
    wait_for(
        lambda: fresh(task).state == Task.State.COMPLETED,
        timeout=60,
        message=f"task {task.task_id} to complete",
    )
    return task


def task_dir(pool, task_id: str, node_id: str = "n1") -> Path:
    return (
        Path(ComputeNode.objects.get(pool=pool, node_id=node_id).root_dir)
        / f"workitems/job1/job-1/{task_id}"
    )


def output(
    container_url: str,
    condition: str = "tasksuccess",
    pattern: str = "out.txt",
    path: str = "",
    **extra,
):
    destination = {"containerUrl": container_url, **({"path": path} if path else {}), **extra}
    return {
        "filePattern": pattern,
        "destination": {"container": destination},
        "uploadOptions": {"uploadCondition": condition},
    }


def signature(url: str) -> str:
    return url.split("sig=", 1)[1].split("&", 1)[0]


# --- resource files -----------------------------------------------------------------------


def test_resource_files_come_from_a_blob_sas_a_container_and_its_prefix(
    agents, transactional_db, azurite
):
    inputs = azurite.container("in")
    azurite.put(inputs, "a.txt", b"alpha\n")
    azurite.put(inputs, "lib/b.txt", b"beta\n")
    azurite.put(inputs, "lib/deep/c.bin", b"\x00\xffgamma")
    pool = make_pool("st-resources")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'cat one.txt tools/lib/b.txt; cat libonly/lib/deep/c.bin > /dev/null; ls libonly'",
        resourceFiles=[
            {"httpUrl": azurite.blob_sas_url(inputs, "a.txt"), "filePath": "one.txt"},
            {
                "storageContainerUrl": azurite.container_sas_url(inputs, read=True, list_=True),
                "filePath": "tools",
            },
            {
                "storageContainerUrl": azurite.container_sas_url(inputs, read=True, list_=True),
                "blobPrefix": "lib/",
                "filePath": "libonly",
                "fileMode": "0600",
            },
        ],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert (task.result, task.exit_code) == ("success", 0), task.failure_info
    root = task_dir(pool, "t1")
    assert (root / "stdout.txt").read_text() == "alpha\nbeta\nlib\n"
    assert (root / "wd/tools/lib/deep/c.bin").read_bytes() == b"\x00\xffgamma"
    assert (root / "wd/tools/a.txt").read_bytes() == b"alpha\n"
    assert oct((root / "wd/libonly/lib/b.txt").stat().st_mode & 0o777) == "0o600"
    assert not (root / "wd/libonly/a.txt").exists(), "blobPrefix did not filter"


def test_auto_storage_gives_the_task_a_sas_and_never_the_key(agents, transactional_db, azurite):
    inputs = azurite.container("auto")
    azurite.put(inputs, "data/x.txt", b"from auto-storage\n")
    pool = make_pool("st-auto")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'cat in/data/x.txt; env'",
        resourceFiles=[{"autoStorageContainerName": inputs, "filePath": "in"}],
    )
    unlinked = add(job, "t2", "/bin/true", resourceFiles=[{"autoStorageContainerName": inputs}])
    agents.start(
        pool,
        "n1",
        slots=1,
        BATCHSITE_AUTO_STORAGE=json.dumps({pool.account.name: azurite.connection_string}),
    )
    assert completed(task).result == "success", task.failure_info
    out = (task_dir(pool, "t1") / "stdout.txt").read_text()
    assert out.startswith("from auto-storage\n")
    assert KEY not in out and "BATCHSITE_AUTO_STORAGE" not in out
    assert completed(unlinked).result == "success", unlinked.failure_info

    other = make_pool("st-auto-none")
    job2 = make_job(other.account, other, job_id="job1")
    lost = add(job2, "t1", "/bin/true", resourceFiles=[{"autoStorageContainerName": inputs}])
    agents.start(
        other,
        "n2",
        slots=1,
        BATCHSITE_AUTO_STORAGE=json.dumps({pool.account.name: azurite.connection_string}),
    )
    lost = completed(lost)
    assert (lost.result, lost.failure_info["code"]) == ("failure", "ResourceContainerAccessDenied")
    assert "BATCHSITE_AUTO_STORAGE" in lost.failure_info["message"]


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("blob", "BlobAccessDenied"),
        ("missing-blob", "BlobNotFound"),
        ("container", "ResourceContainerAccessDenied"),
        ("missing-container", "ResourceContainerNotFound"),
        ("unreachable", "BlobDownloadMiscError"),
    ],
)
def test_a_download_that_fails_gives_batchs_failure_without_a_retry_or_the_sas(
    agents, transactional_db, azurite, which, code
):
    inputs = azurite.container("bad")
    azurite.put(inputs, "a.txt", b"a\n")
    good = azurite.blob_sas_url(inputs, "a.txt")
    with socket_closed() as port:
        spec = {
            "blob": {
                "httpUrl": azurite.blob_sas_url(inputs, "a.txt").replace("sig=", "sig=AAAA"),
                "filePath": "a",
            },
            "missing-blob": {"httpUrl": azurite.blob_sas_url(inputs, "nope.txt"), "filePath": "a"},
            "container": {
                "storageContainerUrl": azurite.container_sas_url(inputs, read=True)
            },  # no list permission
            "missing-container": {
                "storageContainerUrl": azurite.container_sas_url("gone", read=True, list_=True)
            },
            "unreachable": {"httpUrl": f"http://127.0.0.1:{port}/a.txt", "filePath": "a"},
        }[which]
        pool = make_pool(f"st-fail-{which}")
        job = make_job(pool.account, pool)
        task = add(
            job,
            "t1",
            "/bin/sh -c 'echo ran > ran.txt'",
            constraints={"maxTaskRetryCount": 2},
            resourceFiles=[{"httpUrl": good, "filePath": "first.txt"}, spec],
        )
        agents.start(pool, "n1", slots=1)
        task = completed(task)
    info = task.failure_info
    assert (task.result, task.exit_code, task.retry_count) == ("failure", None, 0)
    assert (info["category"], info["code"]) == ("usererror", code), info
    assert info["details"] == [{"name": "resourceFile", "value": "1"}]
    root = task_dir(pool, "t1")
    assert (root / "wd/first.txt").read_bytes() == b"a\n"
    assert not (root / "wd/ran.txt").exists(), "the command ran without its files"
    stderr = (root / "stderr.txt").read_text()
    assert info["message"] in stderr
    assert signature(good) not in stderr + info["message"]


class socket_closed:
    """A local port nothing listens on (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_the_start_task_gets_its_files_from_a_container(agents, transactional_db, azurite):
    inputs = azurite.container("start")
    azurite.put(inputs, "setup.sh", b"echo set up\n")
    pool = make_pool(
        "st-start",
        startTask={
            "commandLine": "/bin/sh setup/setup.sh",
            "waitForSuccess": True,
            "resourceFiles": [
                {
                    "storageContainerUrl": azurite.container_sas_url(inputs, read=True, list_=True),
                    "filePath": "setup",
                }
            ],
        },
    )
    agents.start(pool, "n1", slots=1)
    node = ComputeNode.objects.get(pool=pool, node_id="n1")
    wait_for(
        lambda: (
            (ComputeNode.objects.get(pk=node.pk).start_task_info or {}).get("state") == "completed"
        ),
        timeout=60,
        message="the start task to complete",
    )
    info = ComputeNode.objects.get(pk=node.pk).start_task_info
    assert (info["result"], info["exitCode"]) == ("success", 0), info
    assert (Path(node.root_dir) / "startup/stdout.txt").read_text() == "set up\n"


# --- output files -------------------------------------------------------------------------


def test_output_files_go_where_their_patterns_and_paths_say(agents, transactional_db, azurite):
    outputs = azurite.container("out")
    url = azurite.container_sas_url(outputs, write=True)
    pool = make_pool("st-outputs")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'echo result > out.txt; mkdir -p logs/a/b; echo 1 > logs/one.log; "
        "echo 2 > logs/a/b/two.log; echo h > logs/.hidden.log; echo said'",
        outputFiles=[
            output(
                url,
                pattern="out.txt",
                path="results/final.txt",
                uploadHeaders=[
                    {"name": "Content-Type", "value": "text/plain"},
                    {"name": "x-ms-meta-origin", "value": "batchsite"},
                ],
            ),
            output(url, pattern="logs/**/*.log", path="logs"),
            output(url, pattern="../std?ut.txt", condition="taskcompletion"),
            output(url, pattern="out.txt", path="failed-only.txt", condition="taskfailure"),
        ],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    assert (task.result, task.exit_code) == ("success", 0), task.failure_info
    assert azurite.names(outputs) == [
        "logs/a/b/two.log",
        "logs/one.log",
        "results/final.txt",
        "stdout.txt",
    ]
    assert azurite.get(outputs, "results/final.txt") == b"result\n"
    assert azurite.get(outputs, "logs/a/b/two.log") == b"2\n"
    assert azurite.get(outputs, "stdout.txt") == b"said\n"
    props = azurite.service().get_blob_client(outputs, "results/final.txt").get_blob_properties()
    assert (props.content_settings.content_type, props.metadata) == (
        "text/plain",
        {"origin": "batchsite"},
    )
    root = task_dir(pool, "t1")
    log = (root / "fileuploadout.txt").read_text()
    assert "results/final.txt" in log and signature(url) not in log
    assert (root / "fileuploaderr.txt").read_text() == ""


def test_a_failing_command_uploads_only_what_failure_asks_for(agents, transactional_db, azurite):
    outputs = azurite.container("fail")
    url = azurite.container_sas_url(outputs, write=True)
    pool = make_pool("st-outputs-fail")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'echo partial > out.txt; exit 3'",
        constraints={"maxTaskRetryCount": 1},
        outputFiles=[
            output(url, path="on-success.txt"),
            output(url, condition="taskfailure", path="on-failure.txt"),
            output(url, condition="taskcompletion", path="always.txt"),
        ],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    # Retried once as any non-zero exit: both attempts uploaded.
    assert (task.result, task.exit_code, task.retry_count) == ("failure", 3, 1)
    assert task.failure_info["code"] == "FailureExitCode"
    assert azurite.names(outputs) == ["always.txt", "on-failure.txt"]
    assert azurite.get(outputs, "on-failure.txt") == b"partial\n"


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("no-match", "FileUploadMiscError"),
        ("no-match-wildcard", "FileUploadMiscError"),
        ("read-only-sas", "FileUploadAccessDenied"),
        ("missing-container", "FileUploadContainerNotFound"),
        ("outside", "FileUploadMiscError"),
    ],
)
def test_a_failed_upload_gives_batchs_failure_and_keeps_the_exit_code(
    agents, transactional_db, azurite, which, code
):
    outputs = azurite.container("upfail")
    url = azurite.container_sas_url(outputs, write=True)
    bad = {
        "no-match": output(url, pattern="absent.txt"),
        "no-match-wildcard": output(url, pattern="*.csv"),
        "read-only-sas": output(
            azurite.container_sas_url(outputs, read=True), pattern="out.txt", path="denied.txt"
        ),
        "missing-container": output(
            azurite.container_sas_url("nowhere", write=True), pattern="out.txt"
        ),
        "outside": output(url, pattern="../../*"),
    }[which]
    pool = make_pool(f"st-upfail-{which}")
    job = make_job(pool.account, pool)
    task = add(
        job,
        "t1",
        "/bin/sh -c 'echo data > out.txt'",
        constraints={"maxTaskRetryCount": 2},
        outputFiles=[output(url, path="first.txt"), bad, output(url, path="after.txt")],
    )
    agents.start(pool, "n1", slots=1)
    task = completed(task)
    info = task.failure_info
    assert (task.result, task.exit_code, task.retry_count) == ("failure", 0, 0)
    assert (info["category"], info["code"]) == ("usererror", code), info
    assert info["details"] == [{"name": "outputFile", "value": "1"}]
    # The other outputs are not lost: those before and after the failing one are uploaded.
    assert azurite.names(outputs) == ["after.txt", "first.txt"]
    root = task_dir(pool, "t1")
    err = (root / "fileuploaderr.txt").read_text()
    assert info["message"] in err and f'"code": "{code}"' in err
    for shown in (err, (root / "fileuploadout.txt").read_text(), info["message"]):
        assert signature(url) not in shown


def test_a_terminated_upload_ends_the_task_as_terminated(agents, transactional_db, azurite):
    import socket

    from tasks.operations.tasks import terminate_task

    pool = make_pool("st-terminate")
    job = make_job(pool.account, pool)
    # Storage that takes the connection and never answers: the upload hangs.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/{ACCOUNT}/c?sv=2021-08-06&sig=SECRET"
        task = add(job, "t1", "/bin/sh -c 'echo x > out.txt'", outputFiles=[output(url)])
        agents.start(pool, "n1", slots=1)
        root = task_dir(pool, "t1")
        wait_for(
            lambda: "Uploading" in _read(root / "fileuploadout.txt"),
            timeout=30,
            message="the upload to start",
        )
        terminate_task(fresh(task))
        task = completed(task)
        assert task.failure_info["code"] == "TaskEnded", task.failure_info
        node = ComputeNode.objects.get(pool=pool, node_id="n1")
        wait_for(
            lambda: ComputeNode.objects.get(pk=node.pk).state == "idle",
            timeout=30,
            message="the node to be idle again (the uploader killed)",
        )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
