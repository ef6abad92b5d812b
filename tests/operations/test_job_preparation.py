"""tasks.operations.job_preparation: when a node runs a job's preparation and release, and
what the claim and the job's end wait for."""

from datetime import timedelta

import pytest

from tasks.models import ComputeNode, Job, JobPreparation, NodeCleanup
from tasks.operations import job_preparation as ops
from tasks.operations.job_ends import settle_ending_jobs
from tasks.operations.jobs import delete_job, terminate_job
from tasks.operations.sweeps import run_sweeps
from tests.execution import add, claimed_ids, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db

PREP = {"commandLine": "/bin/true"}
RELEASE = {"commandLine": "/bin/true"}


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def node(pool):
    return make_node(pool, "node-1", slots=2)


def prepared_job(account, pool, job_id="job1", prep=None, release=None, **spec):
    spec = {"jobPreparationTask": prep or PREP, **spec}
    if release is not None:
        spec["jobReleaseTask"] = release
    return make_job(account, pool, job_id, **spec)


def prepare(job, node, *, exit_code=0, failure_code=""):
    record = ops.start_job_preparation(job, node)
    assert record is not None
    retry = ops.finish_job_preparation(record, exit_code=exit_code, failure_code=failure_code)
    return JobPreparation.objects.get(pk=record.pk), retry


def reboot(node):
    ComputeNode.objects.filter(pk=node.pk).update(registered=node.registered + timedelta(seconds=5))
    node.refresh_from_db()
    return node


# --- what is due, and the claim ------------------------------------------------------------


def test_a_job_with_a_preparation_is_due_on_a_node_that_has_not_run_it(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    assert ops.preparations_due(node) == [job]


def test_a_job_without_active_tasks_needs_no_preparation_yet(account, pool, node):
    prepared_job(account, pool)
    assert ops.preparations_due(node) == []


def test_the_claim_leaves_the_tasks_until_the_preparation_succeeded(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    assert claimed_ids(node) == []
    record = ops.start_job_preparation(job, node)
    assert claimed_ids(node) == []  # running: waitForSuccess holds the tasks back
    ops.finish_job_preparation(record, exit_code=0)
    assert claimed_ids(node) == ["t1"]


def test_the_preparation_runs_once_per_node_not_per_task(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    prepare(job, node)
    add(job, "t2")
    assert ops.preparations_due(node) == []
    assert ops.start_job_preparation(job, node) is None
    assert JobPreparation.objects.count() == 1


def test_each_node_runs_its_own_preparation(account, pool, node):
    other = make_node(pool, "node-2")
    job = prepared_job(account, pool)
    add(job, "t1")
    prepare(job, node)
    assert ops.preparations_due(other) == [job]
    assert claimed_ids(other) == []


def test_without_wait_for_success_the_tasks_start_once_it_started(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "waitForSuccess": False})
    add(job, "t1")
    ops.start_job_preparation(job, node)
    assert claimed_ids(node) == ["t1"]


def test_without_wait_for_success_a_failed_preparation_lets_the_tasks_run(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "waitForSuccess": False})
    add(job, "t1")
    prepare(job, node, exit_code=1)
    assert claimed_ids(node) == ["t1"]


def test_jobs_without_preparation_are_claimed_as_before(account, pool, node):
    job = make_job(account, pool)
    add(job, "t1")
    assert claimed_ids(node) == ["t1"]


# --- retries and failure -------------------------------------------------------------------


def test_a_failed_preparation_is_retried_up_to_max_task_retry_count(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "constraints": {"maxTaskRetryCount": 2}})
    add(job, "t1")
    record = ops.start_job_preparation(job, node)
    assert ops.finish_job_preparation(record, exit_code=3) is True
    assert ops.finish_job_preparation(record, exit_code=3) is True
    assert ops.finish_job_preparation(record, exit_code=3) is False
    record.refresh_from_db()
    assert (
        record.prep_state,
        record.prep_result,
        record.prep_retry_count,
        record.prep_exit_code,
    ) == ("completed", "failure", 2, 3)
    assert record.prep_last_retry_time is not None
    assert record.prep_failure_info["code"] == "FailureExitCode"


def test_a_retry_that_succeeds_lets_the_tasks_run(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "constraints": {"maxTaskRetryCount": 1}})
    add(job, "t1")
    record = ops.start_job_preparation(job, node)
    assert ops.finish_job_preparation(record, exit_code=1) is True
    assert ops.finish_job_preparation(record, exit_code=0) is False
    assert claimed_ids(node) == ["t1"]


def test_a_failed_preparation_makes_the_node_ineligible_for_the_job_only(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    other_job = make_job(account, pool, "plain")
    add(other_job, "p1")
    record, retry = prepare(job, node, exit_code=1)
    assert not retry and record.prep_result == "failure"
    assert ops.preparations_due(node) == []  # not run again on this node
    assert claimed_ids(node) == ["p1"]
    assert job.tasks.get(task_id="t1").state == "active"  # left for other nodes


def test_a_preparation_that_could_not_start_fails_with_its_code(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    record, _ = prepare(job, node, exit_code=None, failure_code="CommandLaunchFailed")
    assert record.prep_failure_info["code"] == "CommandLaunchFailed"
    assert record.prep_exit_code is None


# --- reboots (and an agent that died: a new boot of the node) ------------------------------


def test_a_reboot_reruns_the_preparation_by_default(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    prepare(job, node)
    node = reboot(node)
    assert ops.preparations_due(node) == [job]
    assert claimed_ids(node) == []


def test_rerun_on_reboot_after_success_false_keeps_a_success(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "rerunOnNodeRebootAfterSuccess": False})
    add(job, "t1")
    prepare(job, node)
    node = reboot(node)
    assert ops.preparations_due(node) == []
    assert claimed_ids(node) == ["t1"]


def test_a_preparation_interrupted_by_a_restart_runs_again_even_without_rerun(account, pool, node):
    job = prepared_job(account, pool, prep={**PREP, "rerunOnNodeRebootAfterSuccess": False})
    add(job, "t1")
    record = ops.start_job_preparation(job, node)
    node = reboot(node)  # the agent died while it ran
    assert ops.preparations_due(node) == [job]
    again = ops.start_job_preparation(job, node)
    assert again.pk == record.pk and again.prep_state == "running" and again.boot == node.registered


def test_a_start_the_agent_never_heard_of_runs_again_on_the_same_boot(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    record = ops.start_job_preparation(job, node)  # committed; the agent's connection failed then
    assert ops.preparations_due(node) == []  # without saying what it runs: it stands
    assert ops.preparations_due(node, held=frozenset()) == [job]
    assert ops.preparations_due(node, held=frozenset({job.pk})) == []  # the agent runs it
    assert ops.start_job_preparation(job, node, held=frozenset({job.pk})) is None
    again = ops.start_job_preparation(job, node, held=frozenset())
    assert again.pk == record.pk and again.prep_state == "running"


def test_a_report_from_before_a_rerun_started_is_still_the_current_run(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    record = ops.start_job_preparation(job, node)
    ops.finish_job_preparation(record, exit_code=0)
    assert (
        ops.finish_job_preparation(record, exit_code=1) is False
    )  # a second report changes nothing
    record.refresh_from_db()
    assert record.prep_result == "success"


# --- release -------------------------------------------------------------------------------


def test_terminate_waits_for_the_release_on_nodes_that_ran_the_preparation(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    job = terminate_job(job)
    assert Job.objects.get(pk=job.pk).state == "terminating"
    [due] = ops.releases_due(node)
    assert ops.start_job_release(due, node)
    assert ops.releases_due(node) == []
    ops.finish_job_release(due, exit_code=0)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == ("completed", "UserTerminate")
    record = JobPreparation.objects.get()
    assert (record.release_state, record.release_result, record.release_exit_code) == (
        "completed",
        "success",
        0,
    )


def test_a_job_whose_preparation_never_ran_completes_at_once(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    job = terminate_job(job)
    assert Job.objects.get(pk=job.pk).state == "completed"


def test_a_job_without_release_task_does_not_wait(account, pool, node):
    job = prepared_job(account, pool)
    add(job, "t1")
    prepare(job, node)
    terminate_job(job)
    assert Job.objects.get(pk=job.pk).state == "completed"
    assert ops.releases_due(node) == []


def test_a_failed_release_still_ends_the_job(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    terminate_job(job)
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    ops.finish_job_release(due, exit_code=2)
    assert Job.objects.get(pk=job.pk).state == "completed"
    assert JobPreparation.objects.get().release_failure_info["code"] == "FailureExitCode"


def test_the_job_waits_for_every_node_that_ran_the_preparation(account, pool, node):
    other = make_node(pool, "node-2")
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    prepare(job, other)
    terminate_job(job)
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    ops.finish_job_release(due, exit_code=0)
    assert Job.objects.get(pk=job.pk).state == "terminating"
    [due] = ops.releases_due(other)
    ops.start_job_release(due, other)
    ops.finish_job_release(due, exit_code=0)
    assert Job.objects.get(pk=job.pk).state == "completed"


def test_a_node_that_went_offline_is_not_waited_for(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    terminate_job(job)
    ComputeNode.objects.filter(pk=node.pk).update(state=ComputeNode.State.OFFLINE)
    run_sweeps()
    assert Job.objects.get(pk=job.pk).state == "completed"


def test_a_removed_node_is_not_waited_for(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    terminate_job(job)
    ComputeNode.objects.filter(pk=node.pk).delete()
    assert settle_ending_jobs() == 1
    assert Job.objects.get(pk=job.pk).state == "completed"
    record = JobPreparation.objects.get()  # what ran there is still told
    assert (record.node_id, record.pool_name, record.node_name, record.prep_result) == (
        None,
        "pool1",
        "node-1",
        "success",
    )


def test_a_release_interrupted_by_a_restart_runs_again(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    terminate_job(job)
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    node = reboot(node)
    [again] = ops.releases_due(node)
    assert ops.start_job_release(again, node)
    assert not ops.start_job_release(again, node)  # the compare-and-set: once


def test_delete_waits_for_the_release_then_purges_the_job(account, pool, node):
    job = prepared_job(account, pool, release=RELEASE)
    add(job, "t1")
    prepare(job, node)
    delete_job(job)
    assert Job.objects.get(pk=job.pk).state == "deleting"
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    run_sweeps()  # the sweep does not purge it meanwhile
    assert Job.objects.filter(pk=job.pk).exists()
    ops.finish_job_release(due, exit_code=0)
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not JobPreparation.objects.exists()
    # Their directories go too, removed by the node as its tasks' are.
    queued = set(NodeCleanup.objects.filter(node_name="node-1").values_list("task_dir", flat=True))
    assert {
        f"{node.root_dir}/workitems/job1/job-1/jobpreparation",
        f"{node.root_dir}/workitems/job1/job-1/jobrelease",
    } <= queued


def test_all_tasks_complete_waits_for_the_release_too(account, pool, node):
    from tests.execution import claim, finish

    job = prepared_job(account, pool, release=RELEASE, onAllTasksComplete="terminatejob")
    add(job, "t1")
    prepare(job, node)
    [attempt] = claim(node)
    finish(attempt, 0)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == ("terminating", "AllTasksComplete")
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    ops.finish_job_release(due, exit_code=0)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == ("completed", "AllTasksComplete")


# --- status list ---------------------------------------------------------------------------


def test_the_status_list_refuses_a_job_with_neither_task(account, pool):
    error = ops.can_list_job_preparation_status(make_job(account, pool))
    assert (error.code, error.status) == ("JobPreparationTaskOrReleaseTaskNotSpecified", 409)


def test_the_status_list_takes_a_job_with_either_task(account, pool):
    assert ops.can_list_job_preparation_status(prepared_job(account, pool)) is None
    assert (
        ops.can_list_job_preparation_status(make_job(account, pool, "r", jobReleaseTask=RELEASE))
        is None
    )


def test_release_wall_clock_is_at_most_fifteen_minutes():
    assert ops.release_wall_clock_seconds({}) == 900
    assert ops.release_wall_clock_seconds({"maxWallClockTime": "PT1M"}) == 60
    assert ops.release_wall_clock_seconds({"maxWallClockTime": "PT1H"}) == 900
