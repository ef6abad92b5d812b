"""tasks.operations.job_manager: the job manager task is a task of its job, starts first,
holds its node with runExclusive, keeps off low-priority nodes when told, is retried and
requeued like any task, and with killJobOnCompletion ends its job (JMComplete)."""

import pytest

from tasks.errors import BatchError
from tasks.models import Attempt, Job, Task
from tasks.operations.job_schedules import add_job_schedule
from tasks.operations.jobs import terminate_job
from tasks.operations.sweeps import run_frequent_sweeps
from tasks.operations.task_ends import requeue_attempts
from tasks.operations.tasks import terminate_task
from tests.execution import add, claim, claimed_ids, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def node(pool):
    return make_node(pool, "node-1", slots=2)


def manager(**extra) -> dict:
    return {"id": "jm", "commandLine": "/bin/true", **extra}


def manager_job(account, pool, job_id="job1", **extra):
    return make_job(account, pool, job_id, jobManagerTask=manager(**extra))


def test_adding_a_job_with_a_job_manager_adds_that_task_to_the_job(
    account, pool, assert_counters_true
):
    job = manager_job(
        account,
        pool,
        displayName="boss",
        requiredSlots=2,
        environmentSettings=[{"name": "A", "value": "1"}],
        constraints={"maxTaskRetryCount": 3},
    )
    task = Task.objects.get(job=job)
    assert (task.task_id, task.display_name, task.command_line, task.state) == (
        "jm",
        "boss",
        "/bin/true",
        "active",
    )
    assert (task.required_slots, task.max_task_retry_count) == (2, 3)
    assert task.spec["environmentSettings"] == [{"name": "A", "value": "1"}]
    assert "killJobOnCompletion" not in task.spec and "runExclusive" not in task.spec
    assert assert_counters_true(job)["active_count"] == 1


def test_a_job_without_a_job_manager_has_no_task(account, pool):
    job = make_job(account, pool)
    assert not Task.objects.filter(job=job).exists()


def test_the_job_manager_durations_are_parsed_from_a_schedule_wire_form(account, pool):
    from datetime import timedelta

    schedule = add_job_schedule(
        account,
        spec={
            "id": "sched",
            "schedule": {},
            "jobSpecification": {
                "poolInfo": {"poolId": pool.pool_id},
                "jobManagerTask": manager(constraints={"maxWallClockTime": "PT5M"}),
            },
        },
    )
    run_frequent_sweeps()
    job = Job.objects.get(job_schedule=schedule)
    task = Task.objects.get(job=job)
    assert (task.task_id, task.max_wall_clock_time) == ("jm", timedelta(minutes=5))
    assert job.spec["jobManagerTask"]["constraints"] == {"maxWallClockTime": "PT5M"}


def test_a_job_manager_retry_count_below_minus_one_refuses_the_whole_job(account, pool):
    with pytest.raises(BatchError) as e:
        manager_job(account, pool, constraints={"maxTaskRetryCount": -2})
    assert (e.value.code, e.value.status) == ("InvalidPropertyValue", 400)
    assert not Job.objects.exists() and not Task.objects.exists()


def test_adding_a_task_with_the_job_managers_id_is_refused(account, pool):
    job = manager_job(account, pool)
    with pytest.raises(BatchError) as e:
        add(job, "JM")
    assert e.value.code == "TaskExists"


# --- started first ----------------------------------------------------------------------


def test_the_jobs_other_tasks_wait_until_the_job_manager_has_started(account, pool, node):
    job = manager_job(account, pool, allowLowPriorityNode=False)
    add(job, "t1")
    spot = make_node(pool, "spot-1", dedicated=False)
    # The low-priority node may not run the manager, and nothing else of the job runs first.
    assert claimed_ids(spot) == []
    assert claimed_ids(node) == ["jm"]
    assert claimed_ids(fresh(spot)) == ["t1"]


def test_a_job_manager_that_ran_before_holds_nothing_back(account, pool, node):
    job = manager_job(
        account, pool, allowLowPriorityNode=False, constraints={"maxTaskRetryCount": 1}
    )
    [attempt] = claim(node)
    finish(attempt, exit_code=1)  # retried: active again, with a previous state
    assert fresh(Task.objects.get(job=job, task_id="jm")).state == "active"
    add(job, "t1")
    spot = make_node(pool, "spot-1", dedicated=False)
    assert claimed_ids(spot) == ["t1"]


def test_other_jobs_are_not_held_back(account, pool, node):
    manager_job(account, pool, allowLowPriorityNode=False)
    other = make_job(account, pool, "job2")
    add(other, "o1")
    spot = make_node(pool, "spot-1", dedicated=False)
    assert claimed_ids(spot) == ["o1"]
    assert claimed_ids(node) == ["jm"]


def test_a_job_manager_with_allow_low_priority_node_runs_on_one(account, pool):
    manager_job(account, pool)
    spot = make_node(pool, "spot-1", dedicated=False)
    assert claimed_ids(spot) == ["jm"]


# --- runExclusive -----------------------------------------------------------------------


def test_an_exclusive_job_manager_holds_every_slot_of_its_node(account, pool, node):
    job = manager_job(account, pool)
    add(job, "t1")
    [attempt] = claim(node)
    assert (attempt.task.task_id, attempt.slots) == ("jm", 2)
    assert claimed_ids(node) == []  # the node runs nothing else while the manager runs
    other = make_node(pool, "node-2", slots=2)
    assert claimed_ids(other) == ["t1"]
    finish(Attempt.objects.get(pk=attempt.pk), exit_code=0)


def test_an_exclusive_job_manager_waits_for_an_empty_node(account, pool, node):
    other = make_job(account, pool, "job0", priority=10)
    add(other, "busy")
    assert claimed_ids(node, limit=1) == ["busy"]
    manager_job(account, pool)
    assert claimed_ids(node) == []  # one slot is free, but the manager needs the node to itself
    assert claimed_ids(make_node(pool, "node-2")) == ["jm"]


def test_a_job_manager_that_is_not_exclusive_shares_its_node(account, pool, node):
    job = manager_job(account, pool, runExclusive=False)
    add(job, "t1")
    attempts = claim(node)
    assert [(a.task.task_id, a.slots) for a in attempts] == [("jm", 1), ("t1", 1)]


# --- killJobOnCompletion ----------------------------------------------------------------


def test_the_job_ends_when_its_job_manager_completes(account, pool, node):
    job = manager_job(account, pool, runExclusive=False)
    add(job, "worker", "/bin/sleep 60")
    first, second = claim(node)
    assert (first.task.task_id, second.task.task_id) == ("jm", "worker")
    finish(first, exit_code=0)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "JMComplete")
    worker = Task.objects.get(job=job, task_id="worker")
    assert (worker.state, worker.failure_info["code"]) == ("completed", "TaskEnded")
    assert Attempt.objects.get(pk=second.pk).cancel_requested == "terminate"


def test_a_failed_job_manager_ends_the_job_too(account, pool, node):
    job = manager_job(account, pool)
    [attempt] = claim(node)
    finish(attempt, exit_code=3)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "JMComplete")


def test_with_kill_job_on_completion_false_the_job_runs_on(account, pool, node):
    job = manager_job(account, pool, killJobOnCompletion=False)
    [attempt] = claim(node)
    finish(attempt, exit_code=0)
    job.refresh_from_db()
    assert job.state == Job.State.ACTIVE


def test_a_job_manager_being_retried_does_not_end_the_job(account, pool, node):
    job = manager_job(account, pool, constraints={"maxTaskRetryCount": 2})
    [attempt] = claim(node)
    finish(attempt, exit_code=1)
    job.refresh_from_db()
    task = Task.objects.get(job=job)
    assert (job.state, task.state, task.retry_count) == (Job.State.ACTIVE, "active", 1)
    [again] = claim(node)
    assert (again.task.task_id, again.number) == ("jm", 2)


def test_a_job_manager_whose_node_is_lost_runs_again(account, pool, node):
    job = manager_job(account, pool)
    [attempt] = claim(node)
    assert requeue_attempts([attempt.pk]) == [attempt.pk]
    task = Task.objects.get(job=job)
    assert (task.state, task.requeue_count) == ("active", 1)
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE
    [again] = claim(make_node(pool, "node-2"))
    assert again.task.task_id == "jm"


def test_a_terminated_job_manager_with_a_terminated_job_is_left_alone(account, pool, node):
    job = manager_job(account, pool)
    [attempt] = claim(node)
    terminate_job(job, reason="mine")
    finish(attempt, exit_code=0)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "mine")


def test_terminating_the_job_manager_ends_the_job(account, pool, node):
    job = manager_job(account, pool, runExclusive=False)
    add(job, "worker", "/bin/sleep 60")
    claim(node)
    terminate_task(Task.objects.get(job=job, task_id="jm"))
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "JMComplete")
    assert Task.objects.get(job=job, task_id="worker").state == "completed"


def test_terminating_a_job_manager_without_kill_job_on_completion_leaves_the_job(
    account, pool, node
):
    job = manager_job(account, pool, killJobOnCompletion=False)
    terminate_task(Task.objects.get(job=job, task_id="jm"))
    assert Job.objects.get(pk=job.pk).state == Job.State.ACTIVE


def test_a_failed_job_manager_of_a_job_that_performs_exit_options_ends_it_as_task_failed(
    account, pool, node
):
    # A job manager has no exitConditions: a failure takes Batch's default, jobAction terminate.
    job = manager_job(account, pool, killJobOnCompletion=False)
    Job.objects.filter(pk=job.pk).update(
        on_task_failure=Job.OnTaskFailure.PERFORMEXITOPTIONSJOBACTION
    )
    [attempt] = claim(node)
    finish(attempt, exit_code=2)
    job.refresh_from_db()
    assert (job.state, job.terminate_reason) == (Job.State.COMPLETED, "TaskFailed")
