"""tasks.operations.attempts.claim_work: which tasks a node gets, and how they start."""

import pytest
from django.utils import timezone

from tasks.models import Attempt, ComputeNode, Job, SubTask, Task
from tasks.operations.jobs import terminate_job
from tasks.operations.tasks import reactivate_task
from tests.execution import (
    add,
    age,
    claim,
    claimed_ids,
    finish,
    fresh,
    make_job,
    make_node,
    make_pool,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def node(pool):
    return make_node(pool, "node-1", slots=2)


def test_marks_a_claimed_task_running_on_the_node(account, pool, node, assert_counters_true):
    job = make_job(account, pool)
    task = add(job, "t1")
    [attempt] = claim(node)
    task = fresh(task)
    assert (task.state, task.previous_state) == (Task.State.RUNNING, Task.State.ACTIVE)
    assert task.start_time == task.state_transition_time and task.start_time is not None
    assert (task.node_id, task.node_name, task.pool_id) == (node.pk, "node-1", pool.pool_id)
    assert task.task_root_directory == f"{node.root_dir}/workitems/job1/job-1/t1"
    assert task.wait_time is not None and task.wait_time >= timezone.timedelta(0)
    assert (attempt.outcome, attempt.node_id, attempt.number, attempt.task_dir) == (
        Attempt.Outcome.RUNNING,
        node.pk,
        1,
        task.task_root_directory,
    )
    counts = assert_counters_true(job)
    assert (counts["active_count"], counts["running_count"]) == (0, 1)


def test_gives_a_task_to_one_node_only(account, pool, node):
    other = make_node(pool, "node-2")
    make_job(account, pool)
    add(Job.objects.get(job_id="job1"), "t1")
    assert claimed_ids(node) == ["t1"]
    assert claimed_ids(other) == []
    assert Attempt.objects.count() == 1


def test_takes_no_task_of_a_job_bound_to_another_pool(account, pool, node):
    other_pool = make_pool(account, "elsewhere")
    add(make_job(account, other_pool), "t1")
    assert claimed_ids(node) == []


def test_takes_no_task_of_a_job_that_is_not_active(account, pool, node):
    job = make_job(account, pool, onAllTasksComplete="noaction")
    add(job, "t1")
    terminate_job(job)
    assert claimed_ids(node) == []
    Job.objects.filter(pk=job.pk).update(state=Job.State.DISABLED)
    assert claimed_ids(node) == []


def test_takes_higher_priority_jobs_first_then_older_jobs(account, pool, node):
    low = make_job(account, pool, "low", priority=-5)
    old = make_job(account, pool, "old", priority=10)
    new = make_job(account, pool, "new", priority=10)
    Job.objects.filter(pk=old.pk).update(creation_time=timezone.now() - timezone.timedelta(hours=1))
    add(low, "l1")
    add(new, "n1")
    add(old, "o1")
    assert claimed_ids(node, limit=1) == ["o1"]
    assert claimed_ids(node, limit=1) == ["n1"]


def test_takes_a_jobs_oldest_tasks_first(account, pool, node):
    job = make_job(account, pool)
    young, old = add(job, "young"), add(job, "old")
    age(old, 60)
    age(young, 30)
    assert claimed_ids(node) == ["old", "young"]


def test_fills_only_the_free_slots_and_honours_required_slots(account, pool, node):
    job = make_job(account, pool)
    add(job, "big", requiredSlots=3)  # more than the node has: never here
    add(job, "two", requiredSlots=2)
    add(job, "one")
    age(Task.objects.get(task_id="big"), 30)
    age(Task.objects.get(task_id="two"), 20)
    assert claimed_ids(node) == ["two"]
    assert claimed_ids(node) == []  # both slots are held
    [attempt] = Attempt.objects.filter(outcome=Attempt.Outcome.RUNNING)
    finish(attempt, 0)
    assert claimed_ids(node) == ["one"]


def test_max_parallel_tasks_caps_a_jobs_running_tasks(account, pool):
    node = make_node(pool, "wide", slots=10)
    job = make_job(account, pool, maxParallelTasks=2)
    for i in range(5):
        add(job, f"t{i}")
    assert len(claim(node)) == 2
    assert claim(node) == []


def test_a_disabled_or_offline_node_takes_nothing(account, pool, node):
    add(make_job(account, pool), "t1")
    ComputeNode.objects.filter(pk=node.pk).update(scheduling_enabled=False)
    assert claimed_ids(node) == []
    ComputeNode.objects.filter(pk=node.pk).update(
        scheduling_enabled=True, state=ComputeNode.State.OFFLINE
    )
    assert claimed_ids(node) == []


def test_a_task_past_its_180_day_lifetime_is_never_scheduled(account, pool, node):
    task = add(make_job(account, pool), "t1")
    Task.objects.filter(pk=task.pk).update(lifetime_expired=True)
    assert claimed_ids(node) == []


def test_a_reactivated_task_is_claimed_again_as_a_new_attempt(account, pool, node):
    task = add(make_job(account, pool), "t1")
    [first] = claim(node)
    finish(first, 2)
    reactivate_task(fresh(task))
    [second] = claim(node)
    assert second.number == 2 and fresh(task).state == Task.State.RUNNING


# --- dependencies ------------------------------------------------------------------------


@pytest.fixture
def dep_job(account, pool):
    return make_job(account, pool, "deps", usesTaskDependencies=True)


def test_a_dependent_task_waits_until_its_dependency_succeeded(dep_job, node):
    add(dep_job, "a")
    add(dep_job, "b", dependsOn={"taskIds": ["a"]})
    [attempt] = claim(node)
    assert attempt.task.task_id == "a"
    assert claimed_ids(node) == []  # a is still running
    finish(attempt, 0)
    assert claimed_ids(node) == ["b"]


def test_a_dependency_on_a_missing_task_waits(dep_job, node):
    add(dep_job, "b", dependsOn={"taskIds": ["later"]})
    assert claimed_ids(node) == []


def test_a_failed_dependency_blocks_the_dependent_by_default(dep_job, node):
    add(dep_job, "a")
    add(dep_job, "b", dependsOn={"taskIds": ["a"]})
    [attempt] = claim(node)
    finish(attempt, 1)
    assert claimed_ids(node) == []
    assert Task.objects.get(task_id="b").state == Task.State.ACTIVE


def test_dependency_action_satisfy_releases_the_dependent_of_a_failure(dep_job, node):
    add(
        dep_job,
        "a",
        exitConditions={"exitCodes": [{"code": 3, "exitOptions": {"dependencyAction": "satisfy"}}]},
    )
    add(dep_job, "b", dependsOn={"taskIds": ["a"]})
    [attempt] = claim(node)
    finish(attempt, 3)
    assert claimed_ids(node) == ["b"]


def test_dependency_ranges_name_tasks_by_number(dep_job, node):
    for i in (1, 2, 3):
        add(dep_job, str(i))
    add(dep_job, "after", dependsOn={"taskIdRanges": [{"start": 1, "end": 3}]})
    for attempt in claim(node, limit=2):
        finish(attempt, 0)
    assert claimed_ids(node) == ["3"]  # "after" still waits for 3
    finish(Attempt.objects.get(task__task_id="3"), 0)
    assert claimed_ids(node) == ["after"]


# --- multi-instance ----------------------------------------------------------------------


MULTI = {"multiInstanceSettings": {"numberOfInstances": 3, "coordinationCommandLine": "/bin/true"}}


def test_a_multi_instance_task_takes_one_slot_on_each_of_n_nodes(account, pool, node):
    n2, n3 = make_node(pool, "node-2"), make_node(pool, "node-3")
    task = add(make_job(account, pool), "mpi", **MULTI)
    [primary] = claim(node)
    assert primary.subtask_id is None and primary.task.task_id == "mpi"
    subs = list(SubTask.objects.filter(task=task).order_by("subtask_id"))
    assert [s.subtask_id for s in subs] == [1, 2]
    assert {s.node_id for s in subs} == {n2.pk, n3.pk} and all(s.state == "preparing" for s in subs)
    theirs = Attempt.objects.filter(task=task, subtask_id__isnull=False)
    assert {a.node_id for a in theirs} == {n2.pk, n3.pk}
    assert all(a.task_dir.endswith("/workitems/job1/job-1/mpi") for a in theirs)


def test_a_multi_instance_task_waits_while_too_few_nodes_are_free(account, pool, node):
    busy = make_node(pool, "node-2", slots=1)
    make_node(pool, "node-3")
    job = make_job(account, pool)
    add(job, "filler")
    assert claimed_ids(busy) == ["filler"]
    add(job, "mpi", **MULTI)
    assert claimed_ids(node) == []
    # All or nothing: no subtask and no slot is held for the task meanwhile.
    assert not SubTask.objects.exists() and Attempt.objects.count() == 1


def test_a_node_whose_heartbeat_stopped_gets_no_subtask(account, pool, node, settings):
    make_node(pool, "node-2")
    stale = make_node(pool, "node-3")
    ComputeNode.objects.filter(pk=stale.pk).update(
        last_heartbeat=timezone.now()
        - timezone.timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS + 1)
    )
    add(make_job(account, pool), "mpi", **MULTI)
    assert claimed_ids(node) == []


def test_a_ready_task_behind_many_waiting_ones_is_found(dep_job, node):
    for i in range(40):
        age(add(dep_job, f"waiting{i}", dependsOn={"taskIds": ["never"]}), 100 - i)
    add(dep_job, "ready")
    assert claimed_ids(node) == ["ready"]


def test_a_start_is_stamped_after_the_task_was_read_not_when_the_claim_began(
    account, pool, node, monkeypatch
):
    from datetime import timedelta

    from tasks.operations import attempts

    job = make_job(account, pool)
    task = add(job, "t1")
    began = timezone.now()
    # The claim's first clock reading is `began`; every later one is a second on.
    times = iter([began] + [began + timedelta(seconds=1)] * 10)
    monkeypatch.setattr(attempts, "now", lambda: next(times))
    [attempt] = claim(node)
    assert attempt.start_time == began + timedelta(seconds=1) == fresh(task).start_time
