"""azure-batch 15.1.0 through the Python Batch tutorial's flow (tests/sdk/task_files_flow.py)
against a live server, real agents and Azurite: the outputs land in the output container
with the bytes the commands made, and each broken task fails with Batch's failure
information while the others still produce their blobs."""

from __future__ import annotations

import pytest
from azure.batch import models as m

from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.sdk import task_files_flow as flow_

POOL = "tutorialpool"


@pytest.fixture
def flow(azurite):
    flow = flow_.prepare(azurite)
    yield flow
    flow.close()


def test_the_tutorial_flow_produces_its_blobs_and_reports_each_failure(
    client15, sdk_account, agents, azurite, flow
):
    pool = add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})
    agents.start(pool, "tut-1", slots=2)
    client15.create_job(
        m.BatchJobCreateOptions(id="tutorial", pool_info=m.BatchPoolInfo(pool_id=POOL))
    )
    tasks = []
    for task_id, command, inputs, outputs in flow.tasks:
        tasks.append(
            m.BatchTaskCreateOptions(
                id=task_id,
                command_line=command,
                resource_files=[
                    m.ResourceFile(http_url=url, file_path=path) for url, path in inputs
                ],
                output_files=[
                    m.OutputFile(
                        file_pattern=pattern,
                        destination=m.OutputFileDestination(
                            container=m.OutputFileBlobContainerDestination(container_url=url)
                        ),
                        upload_options=m.OutputFileUploadConfiguration(
                            upload_condition=m.OutputFileUploadCondition.TASK_SUCCESS
                        ),
                    )
                    for pattern, url in outputs
                ],
            )
        )
    client15.create_tasks("tutorial", tasks)

    def all_completed():
        listed = list(client15.list_tasks("tutorial"))
        return listed if all(t.state == m.BatchTaskState.COMPLETED for t in listed) else None

    done = {
        t.id: t
        for t in wait_for(all_completed, timeout=120, message="every tutorial task to complete")
    }
    for i in range(3):
        info = done[f"Task{i}"].execution_info
        assert (info.result, info.exit_code, info.failure_info) == (
            m.BatchTaskExecutionResult.SUCCESS,
            0,
            None,
        )
    flow_.check_blobs(azurite, flow)
    for task_id, code in flow_.FAILING.items():
        info = done[task_id].execution_info
        assert info.result == m.BatchTaskExecutionResult.FAILURE
        assert (info.failure_info.category, info.failure_info.code) == (
            m.BatchErrorSourceCategory.USER_ERROR,
            code,
        )
        assert info.failure_info.message and "sig=" not in info.failure_info.message
    # The command ran and exited 0 before its upload failed: its exit code is kept; the
    # download failures never ran the command.
    assert done["nomatch"].execution_info.exit_code == 0
    assert done["badsas"].execution_info.exit_code is None
    assert [d.name for d in done["nomatch"].execution_info.failure_info.details] == ["outputFile"]
    err = b"".join(client15.download_task_file("tutorial", "nomatch", "fileuploaderr.txt"))
    assert b"FileUploadMiscError" in err and b"nothing-*.txt" in err
