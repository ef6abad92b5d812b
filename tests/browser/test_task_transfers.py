"""The task page's resource and output files in a real browser, light and dark: each file
with what became of it, no SAS signature anywhere in the page (screenshots 40-41)."""

from __future__ import annotations

from tasks.models import Task
from tests.browser.conftest import shot
from tests.factories import TaskFactory

SAS = "sv=2021-08-06&sr=c&sp=rw&sig=TOPSECRETSIGNATURE"


def test_the_task_page_shows_its_transfers_without_a_signature(site, new_page):
    job = site["job"]
    spec = {
        "resourceFiles": [
            {
                "httpUrl": f"https://media.blob.core.windows.net/input/frame.exr?{SAS}",
                "filePath": "frame.exr",
            },
            {
                "storageContainerUrl": f"https://media.blob.core.windows.net/luts?{SAS}",
                "blobPrefix": "aces/",
                "filePath": "luts",
                "fileMode": "0644",
            },
        ],
        "outputFiles": [
            {
                "filePattern": "out/*.png",
                "destination": {
                    "container": {
                        "containerUrl": f"https://media.blob.core.windows.net/output?{SAS}",
                        "path": "render/frame",
                    }
                },
                "uploadOptions": {"uploadCondition": "tasksuccess"},
            },
            {
                "filePattern": "../std*.txt",
                "destination": {
                    "container": {"containerUrl": f"https://media.blob.core.windows.net/logs?{SAS}"}
                },
                "uploadOptions": {"uploadCondition": "taskcompletion"},
            },
            {
                "filePattern": "core.*",
                "destination": {
                    "container": {"containerUrl": f"https://media.blob.core.windows.net/logs?{SAS}"}
                },
                "uploadOptions": {"uploadCondition": "taskfailure"},
            },
        ],
    }
    task = TaskFactory(
        job=job,
        task_id="frame-io",
        spec=spec,
        state=Task.State.COMPLETED,
        result="failure",
        exit_code=0,
        failure_info={
            "category": "usererror",
            "code": "FileUploadMiscError",
            "message": "No file matches the pattern out/*.png.",
            "details": [{"name": "outputFile", "value": "0"}],
        },
    )
    for dark in (False, True):
        page = new_page("olive", dark=dark)
        page.goto(f"/web/{job.account.name}/jobs/{job.job_id}/tasks/{task.task_id}/")
        section = page.locator("#task-transfers")
        section.wait_for()
        assert section.locator("tr[data-status=failed]").count() == 1
        assert section.locator("tr[data-status=done]").count() == 3  # two downloads, the logs
        assert "sig=" not in page.content()
        section.scroll_into_view_if_needed()
        shot(page, "41-task-transfers-dark" if dark else "40-task-transfers")
