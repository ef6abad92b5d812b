"""The Python Batch tutorial's flow under azure-batch 14.2.0 (msrest), as the tutorial
itself calls it: run in .venv-sdk14 by tests/sdk/test_sdk14_task_files.py, which prepares
the storage (tests/sdk/task_files_flow.py) and checks the blobs.
Usage: sdk14_task_files.py POOL_ID TASKS_JSON; BATCH_URL, BATCH_ACCOUNT, BATCH_KEY in env.
Prints one JSON line: each task's state, exit code and failureInfo."""

import json
import os
import sys
import time

from azure.batch import BatchServiceClient, batch_auth
from azure.batch import models as batchmodels


def main(pool_id, tasks_json):
    client = BatchServiceClient(
        batch_auth.SharedKeyCredentials(os.environ["BATCH_ACCOUNT"], os.environ["BATCH_KEY"]),
        batch_url=os.environ["BATCH_URL"],
    )
    client.config.retry_policy.retries = 0
    job_id = "tutorial14"
    client.job.add(
        batchmodels.JobAddParameter(
            id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)
        )
    )
    tasks = []
    for task_id, command, inputs, outputs in json.loads(tasks_json):
        tasks.append(
            batchmodels.TaskAddParameter(
                id=task_id,
                command_line=command,
                resource_files=[
                    batchmodels.ResourceFile(http_url=url, file_path=path) for url, path in inputs
                ],
                output_files=[
                    batchmodels.OutputFile(
                        file_pattern=pattern,
                        destination=batchmodels.OutputFileDestination(
                            container=batchmodels.OutputFileBlobContainerDestination(
                                container_url=url
                            )
                        ),
                        upload_options=batchmodels.OutputFileUploadOptions(
                            upload_condition=batchmodels.OutputFileUploadCondition.task_success
                        ),
                    )
                    for pattern, url in outputs
                ],
            )
        )
    client.task.add_collection(job_id, tasks)
    deadline = time.monotonic() + 120
    while True:  # the tutorial's wait_for_tasks_to_complete
        listed = list(client.task.list(job_id))
        if all(t.state == batchmodels.TaskState.completed for t in listed):
            break
        if time.monotonic() > deadline:
            raise SystemExit("the tasks did not complete in 120 s")
        time.sleep(0.5)
    out = {}
    for t in listed:
        info = t.execution_info
        failure = info.failure_info
        out[t.id] = {
            "result": str(info.result.value if hasattr(info.result, "value") else info.result),
            "exit_code": info.exit_code,
            "failure": None
            if failure is None
            else {
                "category": str(getattr(failure.category, "value", failure.category)),
                "code": failure.code,
                "message": failure.message,
                "details": [d.name for d in failure.details or []],
            },
        }
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
