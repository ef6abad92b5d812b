"""The task page's resource and output files (templates/tasks/_task_transfers.html): where
each comes from or goes without the SAS query, and what became of it, from the task's
state and the failed entries its failureInfo names."""

import pytest

from tasks.models import Task
from tasks.nodehost.storage import TaskFiles
from tests.factories import TaskFactory
from tests.web.conftest import task_url

pytestmark = pytest.mark.django_db
SAS = "sv=2021-08-06&sr=c&sp=r&sig=TOPSECRETSIGNATURE"


def out(pattern: str, condition: str, path: str = "") -> dict:
    container = {
        "containerUrl": f"https://acct.blob.core.windows.net/out?{SAS}",
        **({"path": path} if path else {}),
    }
    return {
        "filePattern": pattern,
        "destination": {"container": container},
        "uploadOptions": {"uploadCondition": condition},
    }


SPEC = {
    "resourceFiles": [
        {"httpUrl": f"https://acct.blob.core.windows.net/in/a.txt?{SAS}", "filePath": "a.txt"},
        {
            "storageContainerUrl": f"https://acct.blob.core.windows.net/lib?{SAS}",
            "blobPrefix": "bin/",
            "filePath": "lib",
        },
        {"autoStorageContainerName": "shared", "fileMode": "0755"},
    ],
    "outputFiles": [
        out("result.txt", "tasksuccess", "results/r.txt"),
        out("**/*.log", "taskfailure"),
        out("../std*.txt", "taskcompletion"),
    ],
}


def rows(body: str, table: str) -> list[str]:
    part = body.split(f'id="{table}"')[1].split("</table>")[0]
    return [r.split('"')[0] for r in part.split('data-status="')[1:]]


def test_a_sas_signature_never_reaches_the_page(op, job):
    body = op.get(task_url("task", TaskFactory(job=job, spec=SPEC))).content.decode()
    assert "TOPSECRETSIGNATURE" not in body and "sig=" not in body
    for shown in (
        "https://acct.blob.core.windows.net/in/a.txt",
        "https://acct.blob.core.windows.net/lib (blobs under bin/)",
        "auto-storage container shared",
        "mode 0755",
        "**/*.log",
        "results/r.txt",
    ):
        assert shown in body, shown


def test_the_properties_a_page_shows_as_json_hold_no_signature_and_no_password(view, job):
    """A viewer may look, not act: the JSON of a multi-instance task's settings (its
    commonResourceFiles) and of its container (the registry's password) is shown without
    them, as the resource files' table is."""
    spec = {
        "multiInstanceSettings": {
            "numberOfInstances": 2,
            "coordinationCommandLine": "/bin/true",
            "commonResourceFiles": [
                {"httpUrl": f"https://acct.blob.core.windows.net/in/c.sh?{SAS}", "filePath": "c"},
                {"storageContainerUrl": f"https://acct.blob.core.windows.net/lib?{SAS}"},
            ],
        },
        "containerSettings": {
            "imageName": "busybox",
            "registry": {"registryServer": "r.example", "username": "u", "password": "hunter2"},
        },
    }
    task = TaskFactory(job=job, spec=spec, number_of_instances=2)
    body = view.get(task_url("task", task)).content.decode()
    assert "TOPSECRETSIGNATURE" not in body and "sig=" not in body
    assert "hunter2" not in body
    assert "https://acct.blob.core.windows.net/in/c.sh&quot;" in body  # the URL, unsigned
    assert "&quot;username&quot;: &quot;u&quot;" in body  # the rest of the registry stays


def test_a_succeeded_task_shows_its_downloads_and_the_uploads_its_exit_code_called_for(op, job):
    task = TaskFactory(job=job, spec=SPEC, succeeded=True)
    body = op.get(task_url("task", task)).content.decode()
    assert rows(body, "task-resource-files") == ["done", "done", "done"]
    assert rows(body, "task-output-files") == ["done", "skipped", "done"]
    assert "not uploaded: taskfailure" in body


def test_a_download_failure_marks_the_file_that_failed_and_those_never_tried(op, job):
    task = TaskFactory(
        job=job,
        spec=SPEC,
        state=Task.State.COMPLETED,
        result="failure",
        exit_code=None,
        failure_info={
            "category": "usererror",
            "code": "ResourceContainerAccessDenied",
            "message": "Listing https://acct.blob.core.windows.net/lib answered HTTP 403 Forbidden.",
            "details": [{"name": "resourceFile", "value": "1"}],
        },
    )
    body = op.get(task_url("task", task)).content.decode()
    assert rows(body, "task-resource-files") == ["done", "failed", "skipped"]
    assert "answered HTTP 403 Forbidden." in body.split('id="task-resource-files"')[1]
    assert rows(body, "task-output-files") == ["skipped", "skipped", "skipped"]


def test_an_upload_failure_marks_each_failed_output_and_links_the_upload_log(
    op, job, tmp_path, settings
):
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    task = TaskFactory(
        job=job,
        spec=SPEC,
        state=Task.State.COMPLETED,
        result="failure",
        exit_code=0,
        failure_info={
            "category": "usererror",
            "code": "FileUploadMiscError",
            "message": "No file matches the pattern result.txt.",
            "details": [{"name": "outputFile", "value": "0"}],
        },
        node_name="node-1",
        pool_id="p1",
        task_root_directory="/nodes/node-1/t",
    )
    body = op.get(task_url("task", task)).content.decode()
    assert 'href="' + task_url("task-output", task) not in body.split('id="task-output-files"')[1]
    for name in ("fileuploadout.txt", "fileuploaderr.txt"):
        path = tmp_path / TaskFiles.of_task(task).prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("log\n")
    body = op.get(task_url("task", task)).content.decode()
    assert rows(body, "task-output-files") == ["failed", "skipped", "done"]
    assert "FileUploadMiscError" in body and "No file matches the pattern result.txt." in body
    logs = body.split('id="task-output-files"')[1].split("</section>")[0]
    assert f'href="{task_url("task-output", task)}?file=fileuploaderr.txt"' in logs
    assert f'href="{task_url("task-output", task)}?file=fileuploadout.txt"' in logs


def test_a_task_without_files_has_no_section(op, job):
    body = op.get(task_url("task", TaskFactory(job=job, spec={}))).content.decode()
    assert 'id="task-transfers"' not in body
