"""The job manager scenario under azure-batch 14.2.0 (msrest; api-version
2024-02-01.19.0), by tests/sdk/test_sdk14_job_manager.py: a job whose job manager task (an
SDK 14 script, tests/sdk/job_manager_flow.py) adds its tasks with its token.

Usage: sdk14_job_manager_scenarios.py manager POOL FLOW WORKERS; BATCH_URL, BATCH_ACCOUNT,
BATCH_KEY in env. Prints one JSON line of what it observed; the test asserts.
"""

import json
import sys

from azure.batch import models as m
from sdk14_common import client, wait


def scenario_manager(pool_id, flow, workers):
    c = client()
    c.job.add(m.JobAddParameter(id="not-mine14", pool_info=m.PoolInformation(pool_id=pool_id)))
    admin = m.UserIdentity(
        auto_user=m.AutoUserSpecification(
            scope=m.AutoUserScope.pool, elevation_level=m.ElevationLevel.admin
        )
    )
    c.job.add(
        m.JobAddParameter(
            id="managed14",
            pool_info=m.PoolInformation(pool_id=pool_id),
            job_manager_task=m.JobManagerTask(
                id="manager",
                command_line=f"{sys.executable} {flow} {workers} not-mine14",
                user_identity=admin,
                run_exclusive=False,
                kill_job_on_completion=True,
                authentication_token_settings=m.AuthenticationTokenSettings(
                    access=[m.AccessScope.job]
                ),
            ),
        )
    )
    wait(
        lambda: c.job.get("managed14").state == m.JobState.completed,
        "the job manager to end its job",
        timeout=120,
        interval=0.2,
    )
    job = c.job.get("managed14")
    task = c.task.get("managed14", "manager")
    stdout = b"".join(c.file.get_from_task("managed14", "manager", "stdout.txt")).decode()
    return {
        "reason": job.execution_info.terminate_reason,
        "manager": [task.state.value, task.execution_info.exit_code],
        "tasks": sorted(t.id for t in c.task.list("managed14")),
        "job_manager": job.job_manager_task.id,
        "seen": json.loads(stdout.strip().splitlines()[-1]),
    }


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[f"scenario_{name}"](*args)))
