"""Scenarios of Disable/Enable Job and job schedules run under azure-batch 14.2.0
(msrest; api-version 2024-02-01.19.0), by tests/sdk/test_job_surface_sdk14.py.

Usage: sdk14_job_surface_scenarios.py SCENARIO [ARGS]; BATCH_URL, BATCH_ACCOUNT, BATCH_KEY in
env. Each scenario prints one JSON line of what it observed; the test asserts.
"""

import datetime as dt
import json
import sys
import time

from azure.batch import models as m
from sdk14_common import client, wait


def code_of(call):
    try:
        call()
    except m.BatchErrorException as e:
        return [e.response.status_code, e.error.code]
    return None


def scenario_disable(pool_id, flag):
    c = client()
    out = {}
    commands = {
        "requeue": "/bin/sleep 60",
        "terminate": "/bin/sleep 60",
        "wait": f"/bin/sh -c 'while [ ! -e {flag} ]; do sleep 0.1; done'",
    }
    for mode, command in commands.items():
        job_id = f"d14-{mode}"
        c.job.add(m.JobAddParameter(id=job_id, pool_info=m.PoolInformation(pool_id=pool_id)))
        # As admin: the flag is in the test's tmp_path (0700), out of a non-admin task's reach.
        c.task.add(
            job_id,
            m.TaskAddParameter(
                id="t",
                command_line=command,
                user_identity=m.UserIdentity(
                    auto_user=m.AutoUserSpecification(elevation_level=m.ElevationLevel.admin)
                ),
            ),
        )
        wait(
            lambda job_id=job_id: c.task.get(job_id, "t").state == m.TaskState.running,
            f"{job_id}/t to run",
        )
        c.job.disable(job_id, mode)
        job, task = c.job.get(job_id), c.task.get(job_id, "t")
        out[mode] = {
            "job": job.state.value,
            "task": task.state.value,
            "requeue_count": task.execution_info.requeue_count,
            "failure": task.execution_info.failure_info.code
            if task.execution_info.failure_info
            else None,
        }
    open(flag, "w").close()
    wait(lambda: c.job.get("d14-wait").state == m.JobState.disabled, "d14-wait to be disabled")
    out["wait"]["after"] = [
        c.job.get("d14-wait").state.value,
        c.task.get("d14-wait", "t").state.value,
    ]
    c.job.enable("d14-requeue")
    out["enabled"] = c.job.get("d14-requeue").state.value
    wait(
        lambda: c.task.get("d14-requeue", "t").state == m.TaskState.running,
        "d14-requeue/t to run again",
    )
    out["enable_active"] = code_of(lambda: c.job.enable("d14-requeue"))
    c.job.terminate("d14-requeue")
    out["disable_completed"] = code_of(lambda: c.job.disable("d14-requeue", "requeue"))
    return out


def scenario_schedule():
    c = client()
    interval = dt.timedelta(seconds=2)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    after = start + 2 * interval + dt.timedelta(seconds=1)  # run times start, +2 s, +4 s
    c.job_schedule.add(
        m.JobScheduleAddParameter(
            id="every14",
            display_name="fourteen",
            schedule=m.Schedule(
                do_not_run_until=start, do_not_run_after=after, recurrence_interval=interval
            ),
            job_specification=m.JobSpecification(
                pool_info=m.PoolInformation(pool_id="nopool"), priority=3
            ),
        )
    )
    out = {
        "exists": c.job_schedule.exists("every14"),
        "missing": c.job_schedule.exists("nope"),
        "next_run_is_start": c.job_schedule.get("every14").execution_info.next_run_time == start,
        "jobs": [],
        "not_early": [],
    }
    for n in (1, 2, 3):
        job_id = f"every14:job-{n}"
        job = wait(lambda job_id=job_id: _job(c, job_id), f"{job_id} to be made")
        out["jobs"].append([job.id, job.priority])
        out["not_early"].append(job.creation_time >= start + (n - 1) * interval)
        c.job.terminate(job_id)
    wait(
        lambda: c.job_schedule.get("every14").state == m.JobScheduleState.completed,
        "every14 to complete",
    )
    time.sleep(2.5)  # a run time past doNotRunAfter would have come by now
    out["listed"] = sorted(j.id for j in c.job.list_from_job_schedule("every14"))
    out["end_time"] = c.job_schedule.get("every14").execution_info.end_time is not None

    c.job_schedule.add(
        m.JobScheduleAddParameter(
            id="ops14",
            schedule=m.Schedule(recurrence_interval=dt.timedelta(hours=1)),
            job_specification=m.JobSpecification(pool_info=m.PoolInformation(pool_id="nopool")),
        )
    )
    c.job_schedule.patch(
        "ops14", m.JobSchedulePatchParameter(metadata=[m.MetadataItem(name="k", value="v")])
    )
    out["patched"] = [(i.name, i.value) for i in c.job_schedule.get("ops14").metadata]
    c.job_schedule.update(
        "ops14",
        m.JobScheduleUpdateParameter(
            schedule=m.Schedule(recurrence_interval=dt.timedelta(hours=2)),
            job_specification=m.JobSpecification(pool_info=m.PoolInformation(pool_id="other")),
        ),
    )
    got = c.job_schedule.get("ops14")
    out["updated"] = [
        got.metadata,
        got.job_specification.pool_info.pool_id,
        got.schedule.recurrence_interval.seconds,
    ]
    c.job_schedule.disable("ops14")
    out["disabled"] = c.job_schedule.get("ops14").state.value
    c.job_schedule.enable("ops14")
    out["listed_active"] = [
        s.id
        for s in c.job_schedule.list(
            job_schedule_list_options=m.JobScheduleListOptions(filter="state eq 'active'")
        )
    ]
    c.job_schedule.terminate("ops14")
    out["terminated"] = [
        c.job_schedule.get("ops14").state.value,
        c.job.get("ops14:job-1").state.value,
    ]
    out["terminate_again"] = code_of(lambda: c.job_schedule.terminate("ops14"))
    c.job_schedule.delete("ops14")
    out["deleted"] = [c.job_schedule.exists("ops14"), code_of(lambda: c.job.get("ops14:job-1"))]
    return out


def _job(c, job_id):
    try:
        return c.job.get(job_id)
    except m.BatchErrorException:
        return None


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[f"scenario_{name}"](*args), default=str))
