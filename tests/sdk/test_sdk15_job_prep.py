"""Job preparation and release tasks through azure-batch 15.1.0, run by real node agents
(`manage.py runnode` subprocesses) against a live server: the preparation runs once per
node before that node's first task of the job, the release after the job ends, and List
Preparation and Release Task Status shows both."""

from __future__ import annotations

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError

from tasks.models import ComputeNode, Pool
from tasks.operations.pools import add_pool
from tests.agents import wait_for

POOL = "preppool"
# The preparation counts its runs in the node's shared directory and leaves a marker in its
# working directory; the tasks read both (so they ran after it, on the same node).
PREP = (
    "/bin/sh -c 'echo run >> $AZ_BATCH_NODE_SHARED_DIR/prep-runs-$AZ_BATCH_JOB_ID; "
    "echo ready > marker; echo prepared $AZ_BATCH_TASK_ID'"
)
TASK = "/bin/sh -c 'cat $AZ_BATCH_JOB_PREP_WORKING_DIR/marker; wc -l < $AZ_BATCH_NODE_SHARED_DIR/prep-runs-$AZ_BATCH_JOB_ID'"
RELEASE = "/bin/sh -c 'echo released $AZ_BATCH_JOB_ID; test -d $AZ_BATCH_JOB_PREP_DIR'"


@pytest.fixture
def pool(sdk_account) -> Pool:
    return add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})


@pytest.fixture
def two_nodes(agents, pool):
    procs = [agents.start(pool, node_id, wait=False) for node_id in ("prep-1", "prep-2")]
    wait_for(
        lambda: (
            ComputeNode.objects.filter(pool=pool, state="idle").count() == 2
            or any(p.poll() is not None for p in procs)
        ),
        timeout=30,
        message="two nodes to register",
    )
    assert all(p.poll() is None for p in procs), agents.log("prep-1") + agents.log("prep-2")
    return agents


def completed(client, job_id, task_id, timeout: float = 30) -> m.BatchTask:
    def done():
        task = client.get_task(job_id, task_id)
        return task if task.state == m.BatchTaskState.COMPLETED else None

    return wait_for(done, timeout=timeout, message=f"task {task_id} to complete")


def statuses(client, job_id, **kw) -> list[m.BatchJobPreparationAndReleaseTaskStatus]:
    return list(client.list_job_preparation_and_release_task_status(job_id, **kw))


def test_preparation_runs_once_per_node_before_its_tasks_and_release_after_the_job_ends(
    client15, two_nodes
):
    client15.create_job(
        m.BatchJobCreateOptions(
            id="prepjob",
            pool_info=m.BatchPoolInfo(pool_id=POOL),
            job_preparation_task=m.BatchJobPreparationTask(command_line=PREP),
            job_release_task=m.BatchJobReleaseTask(command_line=RELEASE),
        )
    )
    for n in range(6):
        client15.create_task("prepjob", m.BatchTaskCreateOptions(id=f"t{n}", command_line=TASK))
    tasks = [completed(client15, "prepjob", f"t{n}") for n in range(6)]
    assert all(t.execution_info.exit_code == 0 for t in tasks), [t.execution_info for t in tasks]
    for t in tasks:
        out = b"".join(client15.download_task_file("prepjob", t.id, "stdout.txt")).split()
        assert out == [b"ready", b"1"], (
            t.id,
            out,
        )  # the marker was there; one preparation on its node

    listed = {s.node_id: s for s in statuses(client15, "prepjob")}
    used = {t.node_info.node_id for t in tasks}
    assert used <= set(listed)
    for status in listed.values():
        prep = status.job_preparation_task_execution_info
        assert (status.pool_id, prep.state, prep.result, prep.exit_code, prep.retry_count) == (
            POOL,
            m.BatchJobPreparationTaskState.COMPLETED,
            m.BatchTaskExecutionResult.SUCCESS,
            0,
            0,
        )
        assert prep.task_root_directory.endswith("/workitems/prepjob/job-1/jobpreparation")
        assert status.job_release_task_execution_info is None
        out = b"".join(
            client15.download_node_file(
                POOL, status.node_id, "workitems/prepjob/job-1/jobpreparation/stdout.txt"
            )
        )
        assert out == b"prepared jobpreparation\n"

    client15.begin_terminate_job(
        "prepjob", m._models.BatchJobTerminateOptions(termination_reason="done"), polling_interval=1
    ).result()
    job = client15.get_job("prepjob")
    assert (job.state, job.execution_info.termination_reason) == (m.BatchJobState.COMPLETED, "done")
    for status in statuses(client15, "prepjob"):
        release = status.job_release_task_execution_info
        assert (release.state, release.result, release.exit_code) == (
            m.BatchJobReleaseTaskState.COMPLETED,
            m.BatchTaskExecutionResult.SUCCESS,
            0,
        )
        out = b"".join(
            client15.download_node_file(
                POOL, status.node_id, "workitems/prepjob/job-1/jobrelease/stdout.txt"
            )
        )
        assert out == b"released prepjob\n"


def test_a_failing_preparation_keeps_the_jobs_tasks_off_the_node(client15, agents, pool):
    agents.start(pool, "prep-1")
    client15.create_job(
        m.BatchJobCreateOptions(
            id="badprep",
            pool_info=m.BatchPoolInfo(pool_id=POOL),
            job_preparation_task=m.BatchJobPreparationTask(
                command_line="/bin/sh -c 'exit 3'",
                constraints=m.BatchTaskConstraints(max_task_retry_count=1),
            ),
        )
    )
    client15.create_task("badprep", m.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))

    def failed():
        found = statuses(client15, "badprep")
        return (
            found
            if found and found[0].job_preparation_task_execution_info.state == "completed"
            else None
        )

    [status] = wait_for(failed, timeout=30, message="the preparation to fail")
    prep = status.job_preparation_task_execution_info
    assert (prep.result, prep.exit_code, prep.retry_count) == (
        m.BatchTaskExecutionResult.FAILURE,
        3,
        1,
    )
    assert prep.failure_info.code == "FailureExitCode"
    assert client15.get_task("badprep", "t1").state == m.BatchTaskState.ACTIVE
    # Another job's tasks still run on the node.
    client15.create_job(
        m.BatchJobCreateOptions(id="plain", pool_info=m.BatchPoolInfo(pool_id=POOL))
    )
    client15.create_task("plain", m.BatchTaskCreateOptions(id="p1", command_line="/bin/true"))
    assert completed(client15, "plain", "p1").execution_info.exit_code == 0
    assert client15.get_task("badprep", "t1").state == m.BatchTaskState.ACTIVE


def test_the_status_of_a_job_without_either_task_is_a_409(client15, pool):
    client15.create_job(
        m.BatchJobCreateOptions(id="noprep", pool_info=m.BatchPoolInfo(pool_id=POOL))
    )
    with pytest.raises(HttpResponseError) as e:
        statuses(client15, "noprep")
    assert e.value.status_code == 409
    assert e.value.error.code == "JobPreparationTaskOrReleaseTaskNotSpecified"
