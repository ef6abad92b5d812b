"""The models' state moves: the one place each writes a move's bookkeeping."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import ComputeNode, Job, JobSchedule, Pool, SubTask, Task
from tests.factories import ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory

T0 = timezone.now().replace(microsecond=0)
T1 = T0 + timedelta(minutes=5)


def saved_fields(obj, fields):
    return {name: getattr(obj, name) for name in fields}


@pytest.mark.parametrize("model", [Job, JobSchedule, Task])
def test_a_move_keeps_the_state_it_left_and_touches_the_resource(model):
    obj = model(state="active", state_transition_time=T0, etag="0xOLD", last_modified=T0)

    fields = obj.move_to("completed", T1)

    assert (obj.state, obj.state_transition_time) == ("completed", T1)
    assert (obj.previous_state, obj.previous_state_transition_time) == ("active", T0)
    assert obj.etag != "0xOLD" and obj.etag.startswith("0x")
    assert obj.last_modified == T1
    assert sorted(fields) == sorted(model.MOVE_FIELDS)


def test_each_move_gives_a_new_etag_unless_one_is_shared():
    task = Task(state="active", state_transition_time=T0, etag="0xOLD", last_modified=T0)

    task.move_to("running", T1)
    first = task.etag
    task.move_to("completed", T1)

    assert task.etag != first
    task.move_to("active", T1, etag="0xSHARED")
    assert task.etag == "0xSHARED"


def test_a_state_that_lasted_no_time_is_not_recorded_as_the_previous_one():
    job = Job(state="active", state_transition_time=T0, etag="0xOLD", last_modified=T0)
    job.move_to("disabling", T0)

    job.move_to("disabled", T1, previous=Job.State.ACTIVE)

    assert (job.previous_state, job.state) == ("active", "disabled")


def test_a_pool_moves_without_history_and_its_allocation_without_touching_it():
    pool = Pool(state="active", state_transition_time=T0, etag="0xOLD", last_modified=T0)

    fields = pool.move_to(Pool.State.DELETING, T1)
    assert (pool.state, pool.state_transition_time, pool.last_modified) == ("deleting", T1, T1)
    assert pool.etag != "0xOLD" and sorted(fields) == sorted(Pool.MOVE_FIELDS)

    etag = pool.etag
    fields = pool.move_allocation_to(Pool.AllocationState.RESIZING, T1)
    assert (pool.allocation_state, pool.allocation_state_transition_time) == ("resizing", T1)
    assert pool.etag == etag and sorted(fields) == sorted(Pool.ALLOCATION_MOVE_FIELDS)


def test_a_node_and_a_subtask_move_without_an_etag():
    node = ComputeNode(state="idle", state_transition_time=T0)
    assert node.move_to(ComputeNode.State.RUNNING, T1) == list(ComputeNode.MOVE_FIELDS)
    assert (node.state, node.state_transition_time) == ("running", T1)

    sub = SubTask(state="preparing", state_transition_time=T0)
    assert sorted(sub.move_to(SubTask.State.RUNNING, T1)) == sorted(SubTask.MOVE_FIELDS)
    assert (sub.previous_state, sub.previous_state_transition_time) == ("preparing", T0)


def test_a_touch_changes_only_the_etag_and_last_modified():
    job = Job(state="active", state_transition_time=T0, etag="0xOLD", last_modified=T0)

    assert job.touch(T1) == ["etag", "last_modified"]
    assert (job.state, job.state_transition_time, job.last_modified) == ("active", T0, T1)
    assert job.etag != "0xOLD"


def test_a_requeue_forgets_the_outcome_and_a_reactivation_the_retries_too():
    def ran() -> Task:
        return Task(
            start_time=T0,
            end_time=T1,
            exit_code=3,
            result="failure",
            failure_info={"code": "FailureExitCode"},
            retry_count=2,
            last_retry_time=T0,
            requeue_count=1,
        )

    requeued = ran()
    fields = requeued.clear_execution_info()
    assert saved_fields(requeued, fields) == {
        "end_time": None,
        "exit_code": None,
        "result": "",
        "failure_info": None,
    }
    assert (requeued.start_time, requeued.retry_count, requeued.requeue_count) == (T0, 2, 1)

    reactivated = ran()
    fields = reactivated.clear_execution_info(reactivated=True)
    assert saved_fields(reactivated, fields) == {
        "end_time": None,
        "exit_code": None,
        "result": "",
        "failure_info": None,
        "start_time": None,
        "retry_count": 0,
        "last_retry_time": None,
    }
    assert reactivated.requeue_count == 1


@pytest.mark.django_db
def test_a_set_based_move_takes_the_previous_state_from_each_row():
    job = JobFactory()
    active = TaskFactory(job=job, state=Task.State.ACTIVE)
    running = TaskFactory(job=job, state=Task.State.RUNNING)
    before = {t.pk: t.state_transition_time for t in (active, running)}

    Task.objects.filter(job=job).update(**Task.move_values(Task.State.COMPLETED, T1, etag="0xA"))

    for task in Task.objects.filter(job=job):
        assert (task.state, task.state_transition_time) == ("completed", T1)
        assert task.previous_state == ("active" if task.pk == active.pk else "running")
        assert task.previous_state_transition_time == before[task.pk]
        assert (task.etag, task.last_modified) == ("0xA", T1)


@pytest.mark.django_db
def test_a_saved_move_writes_exactly_the_fields_it_names():
    node = ComputeNodeFactory(pool=PoolFactory())
    node.move_to(ComputeNode.State.OFFLINE, T1)
    node.save(update_fields=list(ComputeNode.MOVE_FIELDS))
    ComputeNode.objects.filter(pk=node.pk).update(
        **ComputeNode.move_values(ComputeNode.State.IDLE, T0)
    )

    node.refresh_from_db()
    assert (node.state, node.state_transition_time) == ("idle", T0)
