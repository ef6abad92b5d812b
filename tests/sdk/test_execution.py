"""Tasks added through azure-batch 15.1.0 really run on real node agents
(`manage.py runnode` subprocesses) against a live server."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import psutil
import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tasks.models import ComputeNode, Pool
from tasks.operations.pools import add_pool
from tests.agents import wait_for

POOL = "execpool"


@pytest.fixture
def pool(sdk_account) -> Pool:
    return add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})


@pytest.fixture
def two_nodes(agents, pool):
    """Two agents of two slots each, started side by side."""
    procs = [agents.start(pool, node_id, wait=False) for node_id in ("exec-1", "exec-2")]
    wait_for(
        lambda: (
            ComputeNode.objects.filter(pool=pool, state="idle").count() == 2
            or any(p.poll() is not None for p in procs)
        ),
        timeout=30,
        message="two nodes to register",
    )
    assert all(p.poll() is None for p in procs), agents.log("exec-1") + agents.log("exec-2")
    return agents


def make_job(client, job_id="job1", **kw) -> str:
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=POOL), **kw)
    )
    return job_id


# Root: the tasks that share a file through the test's tmp_path (0700) must reach it.
ADMIN = m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level=m.ElevationLevel.ADMIN))


def add(client, job_id, task_id, command_line, **kw) -> None:
    client.create_task(
        job_id, m.BatchTaskCreateOptions(id=task_id, command_line=command_line, **kw)
    )


def completed(client, job_id, task_id, timeout: float = 20) -> m.BatchTask:
    return wait_for(
        lambda: _if(
            client.get_task(job_id, task_id), lambda t: t.state == m.BatchTaskState.COMPLETED
        ),
        timeout=timeout,
        message=f"task {task_id} to complete",
    )


def running(client, job_id, task_id, timeout: float = 20) -> m.BatchTask:
    return wait_for(
        lambda: _if(
            client.get_task(job_id, task_id), lambda t: t.state == m.BatchTaskState.RUNNING
        ),
        timeout=timeout,
        message=f"task {task_id} to run",
    )


def _if(value, predicate):
    return value if predicate(value) else None


def read(client, job_id, task_id, path, **kw) -> bytes:
    return b"".join(client.download_task_file(job_id, task_id, path, **kw))


def read_if_there(client, job_id, task_id, path) -> bytes | None:
    """The file, or None while it is not there: a task is running from its claim, and its
    stdout.txt is made when its process starts a moment later (Batch's running state also
    covers a task's start on the node); a loaded machine widens that moment."""
    try:
        return read(client, job_id, task_id, path)
    except ResourceNotFoundError:
        return None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# --- outcomes ----------------------------------------------------------------------------


def test_exit_codes_failure_info_and_output_come_back_through_the_api(client15, two_nodes):
    job = make_job(client15)
    add(client15, job, "ok", "/bin/sh -c 'echo to-out; echo to-err >&2'")
    add(client15, job, "three", "/bin/sh -c 'exit 3'")
    add(client15, job, "missing", "no-such-program --flag")

    ok = completed(client15, job, "ok")
    assert (ok.execution_info.result, ok.execution_info.exit_code) == ("success", 0)
    assert ok.execution_info.failure_info is None
    assert ok.node_info.node_id in ("exec-1", "exec-2") and ok.node_info.pool_id == POOL
    assert ok.node_info.task_root_directory.endswith(
        f"/{ok.node_info.node_id}/workitems/job1/job-1/ok"
    )
    assert ok.execution_info.start_time <= ok.execution_info.end_time
    assert read(client15, job, "ok", "stdout.txt") == b"to-out\n"
    assert read(client15, job, "ok", "stderr.txt") == b"to-err\n"

    three = completed(client15, job, "three")
    assert (three.execution_info.result, three.execution_info.exit_code) == ("failure", 3)
    assert three.execution_info.failure_info.code == "FailureExitCode"
    assert three.execution_info.failure_info.category == "usererror"

    missing = completed(client15, job, "missing")
    assert missing.execution_info.result == "failure" and missing.execution_info.exit_code is None
    assert missing.execution_info.failure_info.code == "CommandProgramNotFound"

    stats = client15.get_task(job, "ok", expand=["stats"]).task_statistics
    assert stats.wall_clock_time > dt.timedelta(0) and stats.wait_time >= dt.timedelta(0)
    counts = client15.get_job_task_counts(job).task_counts
    assert (counts.completed, counts.succeeded, counts.failed) == (3, 1, 2)


def test_the_command_runs_without_a_shell_with_the_batch_environment(client15, two_nodes):
    job = make_job(
        client15,
        common_environment_settings=[
            m.EnvironmentSetting(name="FROM_JOB", value="job"),
            m.EnvironmentSetting(name="BOTH", value="job"),
        ],
    )
    add(client15, job, "literal", "/bin/echo $HOME 'two words'")
    add(
        client15,
        job,
        "env",
        "/bin/sh -c 'env > env.txt'",
        environment_settings=[m.EnvironmentSetting(name="BOTH", value="task")],
    )
    completed(client15, job, "literal")
    assert read(client15, job, "literal", "stdout.txt") == b"$HOME two words\n"

    task = completed(client15, job, "env")
    env = dict(
        line.split("=", 1)
        for line in read(client15, job, "env", "wd/env.txt").decode().splitlines()
    )
    root = task.node_info.task_root_directory
    assert env["AZ_BATCH_TASK_ID"] == "env" and env["AZ_BATCH_JOB_ID"] == job
    assert env["AZ_BATCH_POOL_ID"] == POOL and env["AZ_BATCH_NODE_ID"] == task.node_info.node_id
    assert env["AZ_BATCH_TASK_DIR"] == root and env["AZ_BATCH_TASK_WORKING_DIR"] == f"{root}/wd"
    assert env["PWD"] == f"{root}/wd"
    assert root.startswith(env["AZ_BATCH_NODE_ROOT_DIR"] + "/")
    assert (env["FROM_JOB"], env["BOTH"]) == ("job", "task")  # the task's setting wins
    # The agent's own configuration (database, keys) never reaches a task.
    assert "DATABASE_URL" not in env and "BATCHSITE_DATA_DIR" not in env


def test_a_failing_task_is_retried_up_to_its_max_retry_count(client15, two_nodes):
    job = make_job(client15)
    add(
        client15,
        job,
        "flaky",
        "/bin/sh -c 'exit 1'",
        constraints=m.BatchTaskConstraints(max_task_retry_count=2),
    )
    task = completed(client15, job, "flaky")
    info = task.execution_info
    assert (info.result, info.exit_code, info.retry_count) == ("failure", 1, 2)
    assert info.last_retry_time is not None and info.last_retry_time <= info.end_time


def test_a_task_over_its_wall_clock_limit_is_ended(client15, two_nodes):
    job = make_job(client15)
    add(
        client15,
        job,
        "slow",
        "/bin/sleep 30",
        constraints=m.BatchTaskConstraints(max_wall_clock_time=dt.timedelta(seconds=1)),
    )
    task = completed(client15, job, "slow", timeout=10)
    assert task.execution_info.failure_info.code == "TaskEnded"
    assert task.execution_info.end_time - task.execution_info.start_time < dt.timedelta(seconds=5)


# --- control -----------------------------------------------------------------------------


def test_stdout_reads_while_running_and_terminate_kills_the_process(client15, two_nodes):
    job = make_job(client15)
    add(client15, job, "long", "/bin/sh -c 'echo $$ > pid.txt; echo first; exec sleep 60'")
    running(client15, job, "long")
    wait_for(
        lambda: read_if_there(client15, job, "long", "stdout.txt") == b"first\n",
        message="output so far",
    )
    pid = int(read(client15, job, "long", "wd/pid.txt"))
    assert psutil.pid_exists(pid)
    props = client15.get_task_file_properties(job, "long", "stdout.txt")
    assert props.content_length == 6 and props.is_directory is False
    assert read(client15, job, "long", "stdout.txt", ocp_range="bytes=1-3") == b"irs"

    client15.terminate_task(job, "long")
    wait_for(lambda: gone(pid), timeout=1.0, interval=0.02, message="the process to be killed")
    task = client15.get_task(job, "long")
    assert (task.state, task.execution_info.failure_info.code) == ("completed", "TaskEnded")


def test_reactivate_runs_a_failed_task_again_and_a_succeeded_one_is_refused(
    client15, two_nodes, tmp_path
):
    job = make_job(client15)
    marker = tmp_path / "ran-once"
    add(
        client15,
        job,
        "second-time-lucky",
        f"/bin/sh -c 'test -e {marker} || {{ touch {marker}; exit 1; }}'",
        user_identity=ADMIN,
    )
    assert completed(client15, job, "second-time-lucky").execution_info.result == "failure"
    client15.reactivate_task(job, "second-time-lucky")
    wait_for(
        lambda: client15.get_task(job, "second-time-lucky").execution_info.result == "success",
        message="the reactivated task to succeed",
    )
    with pytest.raises(HttpResponseError) as e:
        client15.reactivate_task(job, "second-time-lucky")
    assert e.value.status_code == 409 and e.value.error.code == "TaskSucceeded"


def test_delete_kills_a_running_task_and_removes_its_directory(client15, two_nodes):
    job = make_job(client15)
    add(client15, job, "doomed", "/bin/sh -c 'echo $$ > pid.txt; exec sleep 60'")
    task = running(client15, job, "doomed")
    wait_for(
        lambda: (
            Path(task.node_info.task_root_directory, "wd", "pid.txt").stat().st_size > 0
            if Path(task.node_info.task_root_directory, "wd", "pid.txt").exists()
            else False
        ),
        message="pid file",
    )
    pid = int(Path(task.node_info.task_root_directory, "wd", "pid.txt").read_text())
    client15.delete_task(job, "doomed")
    wait_for(lambda: gone(pid), timeout=2, message="the process to be killed")
    wait_for(
        lambda: not os.path.exists(task.node_info.task_root_directory),
        message="the directory to go",
    )


def test_a_dependent_task_runs_after_its_dependency_and_a_blocked_one_never(
    client15, two_nodes, tmp_path
):
    job = make_job(client15, uses_task_dependencies=True)
    add(
        client15,
        job,
        "first",
        f"/bin/sh -c 'sleep 0.5; echo made > {tmp_path}/made'",
        user_identity=ADMIN,
    )
    add(
        client15,
        job,
        "then",
        f"/bin/cat {tmp_path}/made",
        depends_on=m.BatchTaskDependencies(task_ids=["first"]),
        user_identity=ADMIN,
    )
    add(client15, job, "fails", "/bin/false")
    add(
        client15,
        job,
        "blocked",
        "/bin/true",
        depends_on=m.BatchTaskDependencies(task_ids=["fails"]),
    )
    then = completed(client15, job, "then")
    first = client15.get_task(job, "first")
    assert then.execution_info.result == "success"
    assert then.execution_info.start_time >= first.execution_info.end_time
    completed(client15, job, "fails")
    assert client15.get_task(job, "blocked").state == m.BatchTaskState.ACTIVE


def test_a_two_instance_task_runs_on_both_nodes_with_its_subtask_listed(client15, two_nodes):
    job = make_job(client15)
    add(
        client15,
        job,
        "mpi",
        "/bin/sh -c 'echo app $AZ_BATCH_IS_CURRENT_NODE_MASTER $AZ_BATCH_HOST_LIST'",
        multi_instance_settings=m.MultiInstanceSettings(
            number_of_instances=2,
            coordination_command_line="/bin/sh -c 'echo coordination $AZ_BATCH_IS_CURRENT_NODE_MASTER'",
        ),
    )
    task = completed(client15, job, "mpi")
    assert task.execution_info.result == "success" and task.execution_info.exit_code == 0
    out = read(client15, job, "mpi", "stdout.txt").decode()
    assert out.startswith("coordination true\n") and "app true 127.0.0.1,127.0.0.1" in out
    [sub] = list(client15.list_subtasks(job, "mpi"))
    assert sub.id == 1 and sub.state == m.BatchSubtaskState.COMPLETED and sub.exit_code == 0
    assert {sub.node_info.node_id, task.node_info.node_id} == {"exec-1", "exec-2"}
    sub_out = Path(sub.node_info.task_root_directory, "stdout.txt").read_text()
    assert sub_out == "coordination false\n"


def test_the_nodes_are_listed_in_their_pool(client15, two_nodes):
    nodes = {n.id: n for n in client15.list_nodes(POOL)}
    assert set(nodes) == {"exec-1", "exec-2"}
    assert all(n.state == m.BatchNodeState.IDLE for n in nodes.values())
    assert client15.get_node(POOL, "exec-1").id == "exec-1"


def test_files_are_listed_recursively_and_filtered_by_name(client15, two_nodes):
    job = make_job(client15)
    add(
        client15,
        job,
        "files",
        "/bin/sh -c 'mkdir -p out/deep; echo x > out/deep/x.txt; echo y > y.txt'",
    )
    completed(client15, job, "files")
    top = {f.name: f for f in client15.list_task_files(job, "files")}
    assert set(top) == {"stdout.txt", "stderr.txt", "wd"} and top["wd"].is_directory
    every = {f.name for f in client15.list_task_files(job, "files", recursive=True)}
    assert {"wd/out", "wd/out/deep", "wd/out/deep/x.txt", "wd/y.txt"} <= every
    wd = {
        f.name
        for f in client15.list_task_files(
            job, "files", recursive=True, filter="startswith(name,'wd/out')"
        )
    }
    assert wd == {"wd/out", "wd/out/deep", "wd/out/deep/x.txt"}
    assert read(client15, job, "files", "wd/out/deep/x.txt") == b"x\n"
    client15.delete_task_file(job, "files", "wd/y.txt")
    with pytest.raises(HttpResponseError) as e:
        read(client15, job, "files", "wd/y.txt")
    assert e.value.status_code == 404


def test_terminating_or_deleting_a_job_stops_its_running_tasks(client15, two_nodes):
    from azure.batch.models._models import BatchJobTerminateOptions

    pids = {}
    for job in ("ending", "going"):
        make_job(client15, job)
        add(client15, job, "long", "/bin/sh -c 'echo $$ > pid.txt; exec sleep 60'")
    for job in ("ending", "going"):
        task = running(client15, job, "long")
        pid_file = Path(task.node_info.task_root_directory, "wd", "pid.txt")
        pids[job] = int(
            wait_for(lambda f=pid_file: f.exists() and f.read_text().strip(), message="pid")
        )
    client15.begin_terminate_job(
        "ending", BatchJobTerminateOptions(termination_reason="UserTerminate"), polling_interval=0.2
    ).result()
    wait_for(
        lambda: gone(pids["ending"]), timeout=2, message="the terminated job's process to be killed"
    )
    assert client15.get_task("ending", "long").execution_info.failure_info.code == "TaskEnded"
    directory = client15.get_task("going", "long").node_info.task_root_directory
    client15.begin_delete_job("going", polling_interval=0.2).result()
    wait_for(
        lambda: gone(pids["going"]), timeout=2, message="the deleted job's process to be killed"
    )
    wait_for(lambda: not os.path.exists(directory), message="the deleted job's directory to go")
