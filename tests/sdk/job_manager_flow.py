"""A job manager written with the azure-batch SDK, as Batch runs one: it authenticates with
AZ_BATCH_AUTHENTICATION_TOKEN at AZ_BATCH_ACCOUNT_URL (no account key), adds N tasks to
its own job, waits for them, tries a job that is not its own, and exits. Run inside the
task by the interpreter of either SDK (15.x: the tests' .venv; 14.2.0: .venv-sdk14).

Usage: job_manager_flow.py N OTHER_JOB. Prints one JSON line of what it observed (its
stdout.txt, which the test reads).
"""

import json
import os
import sys
import time

from azure.batch import __version__ as SDK  # noqa: N812

TOKEN, URL, JOB = (
    os.environ[k]
    for k in ("AZ_BATCH_AUTHENTICATION_TOKEN", "AZ_BATCH_ACCOUNT_URL", "AZ_BATCH_JOB_ID")
)


def wait(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def sdk15(n: int, other: str) -> dict:
    from azure.batch import BatchClient
    from azure.batch import models as m
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.policies import AzureKeyCredentialPolicy

    # `Authorization: Bearer <token>`, as BearerTokenCredentialPolicy sends it, without its
    # refusal of plain http (the test server is not behind TLS).
    credential = AzureKeyCredential(TOKEN)
    client = BatchClient(
        URL,
        credential,
        retry_total=0,
        authentication_policy=AzureKeyCredentialPolicy(
            credential, "Authorization", prefix="Bearer"
        ),
    )
    client.create_tasks(
        JOB, [m.BatchTaskCreateOptions(id=f"w{i}", command_line="/bin/true") for i in range(n)]
    )

    def workers():
        return [t for t in client.list_tasks(JOB) if t.id.startswith("w")]

    done = wait(
        lambda: (
            len(workers()) == n and all(t.state == m.BatchTaskState.COMPLETED for t in workers())
        )
    )

    def refusal(call):
        try:
            call()
        except HttpResponseError as e:
            return [e.status_code, e.error.code if e.error else None]
        return None

    return {
        "sdk": SDK,
        "job": client.get_job(JOB).id,
        "done": done,
        "results": sorted(getattr(t.execution_info.result, "value", None) for t in workers()),
        "other_job": refusal(lambda: client.get_job(other)),
        "other_add": refusal(
            lambda: client.create_task(other, m.BatchTaskCreateOptions(id="x", command_line="x"))
        ),
        "list_jobs": refusal(lambda: list(client.list_jobs())),
        "pools": refusal(lambda: list(client.list_pools())),
    }


def sdk14(n: int, other: str) -> dict:
    from azure.batch import BatchServiceClient
    from azure.batch import models as m
    from msrest.authentication import BasicTokenAuthentication

    # What Azure's own job manager samples do.
    client = BatchServiceClient(BasicTokenAuthentication({"access_token": TOKEN}), batch_url=URL)
    client.config.retry_policy.retries = 0
    client.task.add_collection(
        JOB, [m.TaskAddParameter(id=f"w{i}", command_line="/bin/true") for i in range(n)]
    )

    def workers():
        return [t for t in client.task.list(JOB) if t.id.startswith("w")]

    done = wait(
        lambda: len(workers()) == n and all(t.state == m.TaskState.completed for t in workers())
    )

    def refusal(call):
        try:
            call()
        except m.BatchErrorException as e:
            return [e.response.status_code, e.error.code]
        return None

    return {
        "sdk": SDK,
        "job": client.job.get(JOB).id,
        "done": done,
        "results": sorted(t.execution_info.result.value for t in workers()),
        "other_job": refusal(lambda: client.job.get(other)),
        "other_add": refusal(
            lambda: client.task.add(other, m.TaskAddParameter(id="x", command_line="x"))
        ),
        "list_jobs": refusal(lambda: list(client.job.list())),
        "pools": refusal(lambda: list(client.pool.list())),
    }


if __name__ == "__main__":
    count, other_job = int(sys.argv[1]), sys.argv[2]
    observed = (sdk14 if SDK.startswith("14.") else sdk15)(count, other_job)
    print(json.dumps(observed), flush=True)
