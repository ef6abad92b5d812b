"""tasks.operations.job_schedules: the schedule's run times, its jobs, and each operation
with its `can_*`."""

from datetime import UTC, datetime, timedelta

import pytest

from tasks.errors import BatchError
from tasks.models import Job, JobSchedule, Pool
from tasks.operations import job_schedules as ops
from tasks.operations.job_schedules import Recurrence
from tasks.operations.jobs import add_job, terminate_job
from tasks.operations.pools import delete_pool
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def clock(monkeypatch):
    """The operations' clock, moved by hand."""

    class Clock:
        t = T0

        def advance(self, **kw):
            self.t += timedelta(**kw)

    c = Clock()
    monkeypatch.setattr("tasks.operations.job_schedules.now", lambda: c.t)
    monkeypatch.setattr("tasks.operations.common.now", lambda: c.t)
    monkeypatch.setattr("tasks.operations.jobs.now", lambda: c.t)
    return c


def spec(schedule=None, **job):
    return {
        "id": "sched",
        "schedule": schedule or {},
        "jobSpecification": {"poolInfo": {"poolId": "p"}, **job},
    }


def fresh(schedule):
    return JobSchedule.objects.get(pk=schedule.pk)


def job_ids(schedule):
    return list(
        Job.objects.filter(job_schedule=schedule)
        .order_by("creation_time", "pk")
        .values_list("job_id", flat=True)
    )


def end_jobs(schedule):
    for job in Job.objects.filter(job_schedule=schedule).exclude(state="completed"):
        terminate_job(job)


# --- run times (plain values) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "interval", "t", "due"),
    [
        (None, None, T0 + timedelta(days=9), T0),  # no window: the one run waits for ever
        (MIN, None, T0 + 2 * MIN, None),  # its window passed: no run is left
        (None, 10 * MIN, T0 + 25 * MIN, T0 + 20 * MIN),  # the latest run time, its window open
        (MIN, 10 * MIN, T0 + 25 * MIN, T0 + 30 * MIN),  # its window passed: the next one
        (
            30 * MIN,
            10 * MIN,
            T0 + 25 * MIN,
            T0 + 20 * MIN,
        ),  # a window longer than the interval is the interval
    ],
)
def test_the_due_run_time_follows_the_window_and_the_interval(window, interval, t, due):
    assert Recurrence(None, None, window, interval).due_from(T0, t) == due


def test_no_run_time_after_do_not_run_after():
    r = Recurrence(None, T0 + 15 * MIN, None, 10 * MIN)
    assert r.due_from(T0, T0 + 5 * MIN) == T0
    assert r.due_from(T0 + 10 * MIN, T0 + 12 * MIN) == T0 + 10 * MIN
    assert r.due_from(T0 + 20 * MIN, T0 + 12 * MIN) is None


# --- add ---------------------------------------------------------------------------------


def test_a_schedule_without_a_start_time_makes_its_first_job_at_once(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec(priority=7))
    job = Job.objects.get(job_schedule=schedule)
    assert (job.job_id, job.priority, job.pool_id, job.state) == ("sched:job-1", 7, "p", "active")
    schedule = fresh(schedule)
    assert (schedule.recent_job_id, schedule.next_run_time, schedule.state) == (
        "sched:job-1",
        None,
        "active",
    )


def test_a_recurring_schedule_makes_a_job_each_interval_once_the_last_ended(account, clock):
    schedule = ops.add_job_schedule(
        account, spec=spec({"recurrenceInterval": timedelta(minutes=10)})
    )
    assert fresh(schedule).next_run_time == T0 + 10 * MIN
    clock.advance(minutes=10)
    assert ops.run_job_schedules() == 0  # job-1 still runs
    end_jobs(schedule)
    clock.advance(seconds=30)
    assert ops.run_job_schedules() == 1
    assert job_ids(schedule) == ["sched:job-1", "sched:job-2"]
    assert fresh(schedule).next_run_time == T0 + 20 * MIN


def test_do_not_run_until_delays_the_first_job(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec({"doNotRunUntil": T0 + 5 * MIN}))
    assert job_ids(schedule) == [] and fresh(schedule).next_run_time == T0 + 5 * MIN
    clock.advance(minutes=4)
    assert ops.run_job_schedules() == 0
    clock.advance(minutes=1)
    assert ops.run_job_schedules() == 1


def test_a_run_time_whose_start_window_passed_is_lost_and_the_next_one_is_due(account, clock):
    schedule = ops.add_job_schedule(
        account, spec=spec({"recurrenceInterval": 10 * MIN, "startWindow": 2 * MIN})
    )
    clock.advance(minutes=10)
    ops.run_job_schedules()  # job-1 still runs: job-2 waits
    clock.advance(minutes=3)
    end_jobs(schedule)
    assert ops.run_job_schedules() == 0
    assert fresh(schedule).next_run_time == T0 + 20 * MIN
    clock.advance(minutes=7)
    assert ops.run_job_schedules() == 1
    assert job_ids(schedule) == ["sched:job-1", "sched:job-2"]


def test_the_schedule_completes_after_do_not_run_after_once_its_job_ended(account, clock):
    schedule = ops.add_job_schedule(
        account, spec=spec({"recurrenceInterval": 10 * MIN, "doNotRunAfter": T0 + 15 * MIN})
    )
    clock.advance(minutes=10)
    end_jobs(schedule)
    ops.run_job_schedules()
    assert fresh(schedule).next_run_time is None  # T0 + 20 min is past doNotRunAfter
    assert fresh(schedule).state == "active"  # job-2 runs
    end_jobs(schedule)
    clock.advance(seconds=1)
    ops.run_job_schedules()
    schedule = fresh(schedule)
    assert (schedule.state, schedule.end_time) == (
        "completed",
        T0 + 10 * MIN + timedelta(seconds=1),
    )
    assert job_ids(schedule) == ["sched:job-1", "sched:job-2"]


def test_a_schedule_without_recurrence_completes_when_its_one_job_ended(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec())
    end_jobs(schedule)
    clock.advance(seconds=1)
    ops.run_job_schedules()
    assert fresh(schedule).state == "completed"


def test_refuses_an_id_a_schedule_or_a_job_has(account, clock):
    ops.add_job_schedule(account, spec=spec())
    with pytest.raises(BatchError) as e:
        ops.add_job_schedule(account, spec={**spec(), "id": "SCHED"})
    assert (e.value.code, e.value.status) == ("JobScheduleExists", 409)
    add_job(account, spec={"id": "plainjob", "poolInfo": {"poolId": "p"}})
    with pytest.raises(BatchError) as e:
        ops.add_job_schedule(account, spec={**spec(), "id": "plainjob"})
    assert e.value.code == "JobWithSameIdExists"
    with pytest.raises(BatchError) as e:
        add_job(account, spec={"id": "Sched", "poolInfo": {"poolId": "p"}})
    assert e.value.code == "JobScheduleWithSameIdExists"


def test_another_account_may_use_the_same_id(account, clock):
    ops.add_job_schedule(account, spec=spec())
    other = ops.add_job_schedule(AccountFactory(), spec=spec())
    assert job_ids(other) == ["sched:job-1"]


@pytest.mark.parametrize("name", ["recurrenceInterval", "startWindow"])
def test_refuses_a_window_or_interval_under_the_minimum(account, settings, name):
    settings.BATCHSITE_SCHEDULE_MINIMUM_SECONDS = 60
    with pytest.raises(BatchError) as e:
        ops.add_job_schedule(account, spec=spec({name: timedelta(seconds=59)}))
    assert (e.value.code, dict(e.value.values)["PropertyName"]) == (
        "InvalidPropertyValue",
        f"schedule.{name}",
    )
    assert not JobSchedule.objects.exists()


def test_refuses_a_job_specification_add_job_would_refuse(account):
    with pytest.raises(BatchError) as e:
        ops.add_job_schedule(account, spec=spec(priority=5000))
    assert dict(e.value.values)["PropertyName"] == "jobSpecification.priority"
    assert not JobSchedule.objects.exists()


# --- update ------------------------------------------------------------------------------


def test_patch_changes_what_it_names_and_the_next_job_uses_it(account, clock):
    schedule = ops.add_job_schedule(
        account,
        spec={**spec({"recurrenceInterval": 10 * MIN}), "metadata": [{"name": "a", "value": "1"}]},
    )
    ops.update_job_schedule(
        schedule,
        spec={"jobSpecification": {"poolInfo": {"poolId": "q"}, "priority": 3}},
        replace=False,
    )
    assert fresh(schedule).metadata == [{"name": "a", "value": "1"}]
    assert Job.objects.get(job_id="sched:job-1").pool_id == "p"  # the running job keeps its own
    end_jobs(schedule)
    clock.advance(minutes=10)
    ops.run_job_schedules()
    assert (
        Job.objects.get(job_id="sched:job-2").pool_id,
        Job.objects.get(job_id="sched:job-2").priority,
    ) == ("q", 3)


def test_replace_removes_what_it_leaves_out(account, clock):
    schedule = ops.add_job_schedule(
        account,
        spec={**spec({"recurrenceInterval": 10 * MIN}), "metadata": [{"name": "a", "value": "1"}]},
    )
    etag = fresh(schedule).etag
    ops.update_job_schedule(
        schedule,
        spec={"schedule": {}, "jobSpecification": {"poolInfo": {"poolId": "p"}}},
        replace=True,
    )
    schedule = fresh(schedule)
    assert (schedule.metadata, schedule.schedule) == (None, {})
    assert (
        schedule.next_run_time is None and schedule.etag != etag
    )  # no recurrence: its one job was made


# --- disable / enable --------------------------------------------------------------------


def test_a_disabled_schedule_makes_no_job_and_makes_the_due_one_when_enabled(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec({"recurrenceInterval": 10 * MIN}))
    end_jobs(schedule)
    ops.disable_job_schedule(schedule)
    clock.advance(minutes=12)
    assert ops.run_job_schedules() == 0
    assert fresh(schedule).state == "disabled" and fresh(schedule).next_run_time == T0 + 10 * MIN
    ops.enable_job_schedule(fresh(schedule))
    assert job_ids(schedule) == ["sched:job-1", "sched:job-2"]
    assert fresh(schedule).next_run_time == T0 + 20 * MIN


# --- terminate / delete ------------------------------------------------------------------


def test_terminate_completes_the_schedule_and_terminates_its_job(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec({"recurrenceInterval": 10 * MIN}))
    ops.terminate_job_schedule(schedule)
    schedule = fresh(schedule)
    assert (schedule.state, schedule.previous_state, schedule.next_run_time) == (
        "completed",
        "terminating",
        None,
    )
    job = Job.objects.get(job_schedule=schedule)
    assert (job.state, job.terminate_reason) == ("completed", "TerminateJobSchedule")
    clock.advance(minutes=30)
    assert ops.run_job_schedules() == 0


def test_delete_removes_the_schedule_with_its_jobs(account, clock):
    schedule = ops.add_job_schedule(account, spec=spec())
    ops.delete_job_schedule(schedule)
    assert not JobSchedule.objects.filter(pk=schedule.pk).exists()
    assert not Job.objects.filter(job_id="sched:job-1").exists()


ENDED = [
    ("completed", "JobScheduleCompleted"),
    ("terminating", "JobScheduleBeingTerminated"),
    ("deleting", "JobScheduleBeingDeleted"),
]


@pytest.mark.parametrize(("state", "code"), ENDED)
@pytest.mark.parametrize("operation", ["update", "disable", "enable", "terminate"])
def test_an_ended_schedule_refuses_every_change(account, state, code, operation):
    schedule = ops.add_job_schedule(
        account, spec=spec({"doNotRunUntil": T0 + timedelta(days=3650)})
    )
    JobSchedule.objects.filter(pk=schedule.pk).update(state=state)
    act = {
        "update": lambda s: ops.update_job_schedule(s, spec={"metadata": []}, replace=False),
        "disable": ops.disable_job_schedule,
        "enable": ops.enable_job_schedule,
        "terminate": ops.terminate_job_schedule,
    }[operation]
    with pytest.raises(BatchError) as e:
        act(fresh(schedule))
    assert (e.value.code, e.value.status) == (code, 409)


@pytest.mark.parametrize("state", [s for s, _ in JobSchedule.State.choices])
def test_each_can_agrees_with_its_operation(account, state):
    pairs = [
        (
            ops.can_update_job_schedule,
            lambda s: ops.update_job_schedule(s, spec={"metadata": []}, replace=False),
        ),
        (ops.can_disable_job_schedule, ops.disable_job_schedule),
        (ops.can_enable_job_schedule, ops.enable_job_schedule),
        (ops.can_terminate_job_schedule, ops.terminate_job_schedule),
        (ops.can_delete_job_schedule, ops.delete_job_schedule),
    ]
    for i, (can, act) in enumerate(pairs):
        schedule = ops.add_job_schedule(
            account,
            spec={**spec({"doNotRunUntil": T0 + timedelta(days=3650)}), "id": f"s-{state}-{i}"},
        )
        JobSchedule.objects.filter(pk=schedule.pk).update(state=state)
        refusal = can(fresh(schedule))
        try:
            act(fresh(schedule))
            outcome = None
        except BatchError as e:
            outcome = e.code
        assert outcome == (refusal.code if refusal else None)


# --- auto pools --------------------------------------------------------------------------

AUTO_POOL = {
    "autoPoolSpecification": {
        "poolLifetimeOption": "jobschedule",
        "autoPoolIdPrefix": "sp",
        "pool": {"vmSize": "standard_d2s_v3"},
    }
}


def test_a_jobschedule_auto_pool_is_shared_by_its_jobs_and_goes_when_the_schedule_completes(
    account, clock
):
    schedule = ops.add_job_schedule(
        account,
        spec={
            "id": "sched",
            "schedule": {"recurrenceInterval": 10 * MIN},
            "jobSpecification": {"poolInfo": AUTO_POOL},
        },
    )
    pool_id = fresh(schedule).auto_pool_id
    assert pool_id.startswith("sp_") and Pool.objects.get(pool_id=pool_id).state == "active"
    end_jobs(schedule)
    assert (
        Pool.objects.get(pool_id=pool_id).state == "active"
    )  # it lives for the schedule, not the job
    clock.advance(minutes=10)
    ops.run_job_schedules()
    assert {j.pool_id for j in Job.objects.filter(job_schedule=schedule)} == {pool_id}
    ops.terminate_job_schedule(fresh(schedule))
    assert not Pool.objects.filter(
        pool_id=pool_id, state="active"
    ).exists()  # deleting, or gone (no nodes)


def test_a_job_that_cannot_be_made_loses_its_run_time_instead_of_failing_every_pass(
    account, clock, settings, caplog
):
    schedule = ops.add_job_schedule(
        account,
        spec={
            "id": "sched",
            "schedule": {"recurrenceInterval": 10 * MIN},
            "jobSpecification": {"poolInfo": AUTO_POOL},
        },
    )
    end_jobs(schedule)
    delete_pool(Pool.objects.get(pool_id=fresh(schedule).auto_pool_id))
    settings.BATCHSITE_VM_SIZES = {"another_size": {"provider": "local"}}  # its pool is refused now
    clock.advance(minutes=10)
    assert ops.run_job_schedules() == 0
    assert "could not be made" in caplog.text
    assert (fresh(schedule).next_run_time, job_ids(schedule)) == (T0 + 20 * MIN, ["sched:job-1"])
    assert ops.run_job_schedules() == 0 and fresh(schedule).state == "active"


def test_a_job_lifetime_auto_pool_in_a_schedule_is_each_jobs_own(account, clock):
    auto = {
        "autoPoolSpecification": {**AUTO_POOL["autoPoolSpecification"], "poolLifetimeOption": "job"}
    }
    schedule = ops.add_job_schedule(
        account, spec={"id": "sched", "schedule": {}, "jobSpecification": {"poolInfo": auto}}
    )
    job = Job.objects.get(job_schedule=schedule)
    assert Pool.objects.get(pool_id=job.pool_id).owner_job_id == job.pk
    assert fresh(schedule).auto_pool_id == ""
