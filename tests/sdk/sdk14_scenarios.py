"""Scenarios run under azure-batch 14.2.0 (msrest; api-version 2024-02-01.19.0).

Run by tests/sdk/test_sdk14_tasks.py in .venv-sdk14 (14.x cannot share a virtualenv
with 15.x). Each scenario prints one JSON line of what it observed; the test asserts.
Usage: sdk14_scenarios.py SCENARIO [ARGS]; BATCH_URL, BATCH_ACCOUNT, BATCH_KEY in env.
"""

import datetime as dt
import json
import sys

from azure.batch import models as m
from sdk14_common import client, code_of, status_of


def make_job(c, job_id="job14", **kw):
    c.job.add(m.JobAddParameter(id=job_id, pool_info=m.PoolInformation(pool_id="local"), **kw))
    return job_id


def full_task(task_id):
    return m.TaskAddParameter(
        id=task_id,
        display_name="every property",
        command_line="/bin/sh -c 'echo hi'",
        exit_conditions=m.ExitConditions(
            exit_codes=[
                m.ExitCodeMapping(
                    code=3,
                    exit_options=m.ExitOptions(job_action="terminate", dependency_action="block"),
                )
            ],
            exit_code_ranges=[
                m.ExitCodeRangeMapping(
                    start=10, end=20, exit_options=m.ExitOptions(job_action="none")
                )
            ],
            default=m.ExitOptions(job_action="none", dependency_action="satisfy"),
        ),
        resource_files=[
            m.ResourceFile(
                http_url="https://example.invalid/a.txt", file_path="a.txt", file_mode="0644"
            )
        ],
        output_files=[
            m.OutputFile(
                file_pattern="*.txt",
                destination=m.OutputFileDestination(
                    container=m.OutputFileBlobContainerDestination(
                        container_url="https://example.invalid/c", path="out"
                    )
                ),
                upload_options=m.OutputFileUploadOptions(upload_condition="taskcompletion"),
            )
        ],
        environment_settings=[m.EnvironmentSetting(name="A", value="1")],
        affinity_info=m.AffinityInformation(affinity_id="TVM:node1"),
        constraints=m.TaskConstraints(
            max_wall_clock_time=dt.timedelta(hours=1),
            retention_time=dt.timedelta(days=1),
            max_task_retry_count=3,
        ),
        required_slots=1,
        user_identity=m.UserIdentity(
            auto_user=m.AutoUserSpecification(scope="task", elevation_level="admin")
        ),
        multi_instance_settings=m.MultiInstanceSettings(
            number_of_instances=2, coordination_command_line="echo c"
        ),
        depends_on=m.TaskDependencies(
            task_ids=["a", "b"], task_id_ranges=[m.TaskIdRange(start=1, end=5)]
        ),
        application_package_references=[
            m.ApplicationPackageReference(application_id="app", version="1")
        ],
        authentication_token_settings=m.AuthenticationTokenSettings(access=["job"]),
    )


def scenario_roundtrip():
    c = client()
    job = make_job(c, uses_task_dependencies=True, on_task_failure="performExitOptionsJobAction")
    c.task.add(job, full_task("Full-1"))
    got = c.task.get(job, "full-1")
    sent = full_task("Full-1")
    mismatches = []
    for attr in (
        "id",
        "display_name",
        "command_line",
        "exit_conditions",
        "resource_files",
        "output_files",
        "environment_settings",
        "affinity_info",
        "required_slots",
        "user_identity",
        "multi_instance_settings",
        "depends_on",
        "application_package_references",
        "authentication_token_settings",
    ):
        a, b = getattr(sent, attr), getattr(got, attr)
        if (
            a.serialize()
            if hasattr(a, "serialize")
            else [x.serialize() for x in a]
            if isinstance(a, list)
            else a
        ) != (
            b.serialize()
            if hasattr(b, "serialize")
            else [x.serialize() for x in b]
            if isinstance(b, list)
            else b
        ):
            mismatches.append(attr)
    return {
        "mismatches": mismatches,
        "state": got.state.value if hasattr(got.state, "value") else got.state,
        "wall": str(got.constraints.max_wall_clock_time),
        "retention": str(got.constraints.retention_time),
        "retries": got.constraints.max_task_retry_count,
        "retry_count": got.execution_info.retry_count,
    }


def scenario_duplicate():
    c = client()
    job = make_job(c)
    c.task.add(job, m.TaskAddParameter(id="Dup", command_line="/bin/true"))
    return {
        "code": code_of(
            lambda: c.task.add(job, m.TaskAddParameter(id="dUP", command_line="/bin/true"))
        )
    }


def scenario_collection():
    c = client()
    job = make_job(c)
    hundred = [m.TaskAddParameter(id=f"c{i}", command_line="/bin/true") for i in range(100)]
    r = c.task.add_collection(job, hundred)
    statuses = sorted({x.status.value if hasattr(x.status, "value") else x.status for x in r.value})
    job2 = make_job(c, "job14b")
    c.task.add(job2, m.TaskAddParameter(id="taken", command_line="/bin/true"))
    mixed = c.task.add_collection(
        job2,
        [
            m.TaskAddParameter(id="good1", command_line="/bin/true"),
            m.TaskAddParameter(id="TAKEN", command_line="/bin/true"),
            m.TaskAddParameter(id="good2", command_line="/bin/true"),
        ],
    )
    mixed_status = {
        x.task_id: (x.status.value if hasattr(x.status, "value") else x.status) for x in mixed.value
    }
    return {
        "count": len(r.value),
        "statuses": statuses,
        "mixed": mixed_status,
        "listed": sorted(t.id for t in c.task.list(job2)),
    }


def scenario_bulk():
    c = client()
    job = make_job(c)
    tasks = [m.TaskAddParameter(id=f"bulk{i:04d}", command_line="/bin/true") for i in range(350)]
    first = c.task.add_collection(job, tasks, threads=4)
    again = c.task.add_collection(job, tasks, threads=4)
    wide_job = make_job(c, "wide14")
    wide = [
        m.TaskAddParameter(id=f"wide{i:03d}", command_line="/bin/echo " + "y" * 15000)
        for i in range(100)
    ]
    split = c.task.add_collection(wide_job, wide, threads=2)
    return {
        "first": len(first.value),
        "again": len(again.value),
        "listed": sum(1 for _ in c.task.list(job)),
        "split": len(split.value),
        "wide_listed": sum(1 for _ in c.task.list(wide_job)),
    }


def scenario_paging():
    c = client()
    job = make_job(c)
    c.task.add_collection(
        job, [m.TaskAddParameter(id=f"p{i:02d}", command_line="/bin/true") for i in range(23)]
    )
    for i in range(0, 23, 2):
        c.task.terminate(job, f"p{i:02d}")
    ids = [t.id for t in c.task.list(job, task_list_options=m.TaskListOptions(max_results=5))]
    filtered = [
        (t.id, t.state.value, t.command_line)
        for t in c.task.list(
            job,
            task_list_options=m.TaskListOptions(
                max_results=2, filter="state eq 'completed'", select="id,state"
            ),
        )
    ]
    return {"ids": ids, "filtered": filtered}


def scenario_filters():
    c = client()
    job = make_job(c)
    for task_id in ("alpha1", "alpha2", "beta", "gamma"):
        c.task.add(job, m.TaskAddParameter(id=task_id, command_line="/bin/true"))
    c.task.terminate(job, "alpha2")
    c.task.terminate(job, "beta")
    out = {}
    for expression in (
        "startswith(id,'ALPHA')",
        "state eq 'completed'",
        "state ne 'completed'",
        "executionInfo/result eq 'Failure'",
        "creationTime gt DateTime'2020-01-01T00:00:00Z'",
        "stateTransitionTime lt DateTime'2020-01-01T00:00:00Z'",
    ):
        out[expression] = sorted(
            t.id for t in c.task.list(job, task_list_options=m.TaskListOptions(filter=expression))
        )
    out["bad"] = code_of(
        lambda: list(c.task.list(job, task_list_options=m.TaskListOptions(filter="state eq")))
    )
    return out


def scenario_conditional():
    c = client()
    job = make_job(c)
    c.task.add(job, m.TaskAddParameter(id="c", command_line="/bin/true"))
    raw = c.task.get(job, "c", raw=True)
    etag = raw.headers["ETag"]
    not_modified = status_of(
        lambda: c.task.get(job, "c", task_get_options=m.TaskGetOptions(if_none_match=etag))
    )
    mismatch = status_of(
        lambda: c.task.terminate(
            job, "c", task_terminate_options=m.TaskTerminateOptions(if_match="0x8DDEADBEEF")
        )
    )
    state_after = c.task.get(job, "c").state.value
    c.task.terminate(job, "c", task_terminate_options=m.TaskTerminateOptions(if_match=etag))
    return {
        "not_modified": not_modified,
        "mismatch": mismatch,
        "state_after_412": state_after,
        "state_after_match": c.task.get(job, "c").state.value,
    }


def scenario_lifecycle(job_id):
    """Terminate, reactivate, refusals, update, delete, subtasks, counts in job `job_id`
    (made by the test with tasks: failed, ok (succeeded), waiting, mi (multi-instance))."""
    c = client()
    out = {}
    c.task.terminate(job_id, "waiting")
    out["terminate_again"] = code_of(lambda: c.task.terminate(job_id, "waiting"))
    c.task.reactivate(job_id, "failed")
    t = c.task.get(job_id, "failed")
    out["reactivated"] = [
        t.state.value,
        t.previous_state.value,
        t.execution_info.retry_count,
        t.execution_info.exit_code,
        t.execution_info.failure_info is None,
    ]
    out["not_completed"] = code_of(lambda: c.task.reactivate(job_id, "failed"))
    out["succeeded"] = code_of(lambda: c.task.reactivate(job_id, "ok"))
    c.task.update(
        job_id, "failed", constraints=m.TaskConstraints(max_wall_clock_time=dt.timedelta(minutes=5))
    )
    t = c.task.get(job_id, "failed")
    out["updated"] = [
        str(t.constraints.max_wall_clock_time),
        str(t.constraints.retention_time),
        t.constraints.max_task_retry_count,
    ]
    out["update_completed"] = code_of(
        lambda: c.task.update(job_id, "ok", constraints=m.TaskConstraints())
    )
    out["subtasks_plain"] = len(list(c.task.list_subtasks(job_id, "ok").value or []))
    subs = c.task.list_subtasks(job_id, "mi").value
    out["subtasks_mi"] = [[s.id, s.exit_code, s.state.value] for s in subs]
    counts = c.job.get_task_counts(job_id)
    out["counts"] = [
        counts.task_counts.active,
        counts.task_counts.running,
        counts.task_counts.completed,
        counts.task_counts.succeeded,
        counts.task_counts.failed,
    ]
    c.task.delete(job_id, "waiting")
    out["deleted"] = code_of(lambda: c.task.get(job_id, "waiting"))
    return out


def scenario_job_state_refusals(*job_ids):
    c = client()
    return {job_id: code_of(lambda j=job_id: c.task.reactivate(j, "failed")) for job_id in job_ids}


def scenario_auth():
    import base64

    good = client()
    make_job(good, "authjob")
    wrong = base64.b64encode(b"not-the-key" * 4).decode()
    out = {
        "wrong_key": status_of(lambda: client(key=wrong).job.get("authjob")),
        "unknown_account": status_of(lambda: client(name="nosuchaccount").job.get("authjob")),
        "stale_date": status_of(
            lambda: good.job.get(
                "authjob",
                job_get_options=m.JobGetOptions(
                    ocp_date=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
                ),
            )
        ),
    }
    return out


def scenario_node_files(pool_id, node_id):
    """A node's files (tests/sdk/test_node_files.py made them): list, get, properties,
    a link the task made, delete, an unknown node."""
    c = client()
    shared = m.FileListFromComputeNodeOptions(filter="startswith(name,'shared/')")
    out = {"top": sorted(f.name for f in c.file.list_from_compute_node(pool_id, node_id))}
    out["shared"] = sorted(
        f.name
        for f in c.file.list_from_compute_node(
            pool_id, node_id, recursive=True, file_list_from_compute_node_options=shared
        )
    )
    out["content"] = b"".join(
        c.file.get_from_compute_node(pool_id, node_id, "shared/result.txt")
    ).decode()
    ranged = m.FileGetFromComputeNodeOptions(ocp_range="bytes=0-5")
    out["range"] = b"".join(
        c.file.get_from_compute_node(
            pool_id, node_id, "shared/result.txt", file_get_from_compute_node_options=ranged
        )
    ).decode()
    raw = c.file.get_properties_from_compute_node(pool_id, node_id, "shared/result.txt", raw=True)
    out["properties"] = {
        "content-length": raw.response.headers["Content-Length"],
        "ocp-batch-file-isdirectory": raw.response.headers["ocp-batch-file-isdirectory"],
        "url_ends": raw.response.headers["ocp-batch-file-url"].split(c.config.batch_url, 1)[1],
    }
    out["link"] = status_of(
        lambda: b"".join(c.file.get_from_compute_node(pool_id, node_id, "shared/passwd"))
    )
    c.file.delete_from_compute_node(pool_id, node_id, "shared/result.txt")
    out["after_delete"] = status_of(
        lambda: c.file.get_properties_from_compute_node(pool_id, node_id, "shared/result.txt")
    )
    c.file.delete_from_compute_node(pool_id, node_id, "shared/cache", recursive=True)
    out["after_recursive_delete"] = sorted(
        f.name
        for f in c.file.list_from_compute_node(
            pool_id, node_id, recursive=True, file_list_from_compute_node_options=shared
        )
    )
    out["unknown_node"] = status_of(
        lambda: list(c.file.list_from_compute_node(pool_id, "no-such-node"))
    )
    return out


if __name__ == "__main__":
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[f"scenario_{name}"](*args)))
