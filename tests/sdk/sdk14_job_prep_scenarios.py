"""Job preparation and release scenarios run under azure-batch 14.2.0 (msrest; api-version
2024-02-01.19.0), by tests/sdk/test_sdk14_job_prep.py.

Usage: sdk14_job_prep_scenarios.py SCENARIO [ARGS]; BATCH_URL, BATCH_ACCOUNT, BATCH_KEY in
env. Each scenario prints one JSON line of what it observed; the test asserts.
"""

import json
import sys

from azure.batch import models as m
from sdk14_common import client, wait


def node_file(c, pool_id, node_id, path):
    return b"".join(c.file.get_from_compute_node(pool_id, node_id, path)).decode()


def scenario_all_tasks_complete(pool_id):
    """A job with onAllTasksComplete terminatejob: the preparation before its tasks, the
    release when the last task ended, the job completed only after it; then deleted."""
    c = client()
    out = {}
    c.job.add(
        m.JobAddParameter(
            id="prep14",
            pool_info=m.PoolInformation(pool_id=pool_id),
            on_all_tasks_complete=m.OnAllTasksComplete.terminate_job,
            uses_task_dependencies=False,
            job_preparation_task=m.JobPreparationTask(
                command_line="/bin/sh -c 'echo prepared; echo x > marker'",
                environment_settings=[m.EnvironmentSetting(name="WHO", value="prep")],
            ),
            job_release_task=m.JobReleaseTask(
                command_line="/bin/sh -c 'echo released $AZ_BATCH_TASK_ID'"
            ),
        )
    )
    c.task.add_collection(
        "prep14",
        [
            m.TaskAddParameter(
                id=f"t{n}",
                command_line="/bin/sh -c 'test -f $AZ_BATCH_JOB_PREP_WORKING_DIR/marker && echo saw'",
            )
            for n in range(3)
        ],
    )
    job = wait(
        lambda: (lambda j: j if j.state == m.JobState.completed else None)(c.job.get("prep14")),
        "the job to complete",
    )
    out["job"] = [job.state.value, job.execution_info.terminate_reason]
    out["tasks"] = sorted((t.id, t.execution_info.exit_code) for t in c.task.list("prep14"))
    statuses = list(c.job.list_preparation_and_release_task_status("prep14"))
    out["statuses"] = [
        [
            s.pool_id,
            s.job_preparation_task_execution_info.state.value,
            s.job_preparation_task_execution_info.result.value,
            s.job_preparation_task_execution_info.exit_code,
            s.job_release_task_execution_info.state.value,
            s.job_release_task_execution_info.exit_code,
        ]
        for s in statuses
    ]
    out["release_after_tasks"] = all(
        s.job_release_task_execution_info.start_time
        >= max(t.execution_info.end_time for t in c.task.list("prep14"))
        for s in statuses
    )
    node = statuses[0].node_id
    out["prep_out"] = node_file(
        c, pool_id, node, "workitems/prep14/job-1/jobpreparation/stdout.txt"
    )
    out["release_out"] = node_file(c, pool_id, node, "workitems/prep14/job-1/jobrelease/stdout.txt")
    out["selected"] = [
        s.node_id
        for s in c.job.list_preparation_and_release_task_status(
            "prep14",
            m.JobListPreparationAndReleaseTaskStatusOptions(
                filter=f"nodeId eq '{node}'", select="nodeId"
            ),
        )
    ]
    c.job.delete("prep14")

    def gone():
        try:
            c.job.get("prep14")
        except m.BatchErrorException as e:
            return e.error.code
        return None

    out["deleted"] = wait(gone, "the job to go")
    try:
        list(c.job.list_preparation_and_release_task_status("plain14"))
    except m.BatchErrorException as e:
        out["plain"] = [e.response.status_code, e.error.code]
    return out


def main():
    scenario, *args = sys.argv[1:]
    if scenario == "all_tasks_complete":
        c = client()
        c.job.add(m.JobAddParameter(id="plain14", pool_info=m.PoolInformation(pool_id=args[0])))
    print(json.dumps(globals()[f"scenario_{scenario}"](*args)))


if __name__ == "__main__":
    main()
