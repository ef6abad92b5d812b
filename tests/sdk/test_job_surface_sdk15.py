"""azure-batch 15.1.0 against a live server: Disable/Enable Job with real running tasks, and
job schedules whose jobs come on time (issue 11, items 1 and 2)."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import psutil
import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tasks.models import ComputeNode, Pool
from tasks.operations.pools import add_pool
from tasks.operations.sweeps import run_frequent_sweeps
from tests.agents import wait_for

POOL = "surfacepool"


@pytest.fixture
def node(agents, sdk_account) -> Pool:
    pool = add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})
    agents.start(pool, "surface-1", slots=2)
    assert ComputeNode.objects.filter(pool=pool, state="idle").exists()
    return pool


@contextlib.contextmanager
def sweeping(*, tick: float = 0.1):
    """The sweep's frequent pass looping in a thread, as `manage.py sweep` runs it."""
    from django.db import connection

    stop = threading.Event()

    def loop():
        try:
            while not stop.is_set():
                run_frequent_sweeps()
                stop.wait(tick)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


# Tasks that wait for a flag in the test's tmp_path (0700) run as admin: a non-admin task
# cannot see it.
ADMIN = m.UserIdentity(auto_user=m.AutoUserSpecification(elevation_level=m.ElevationLevel.ADMIN))


def make_job(client, job_id: str, *commands: str) -> str:
    client.create_job(m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id=POOL)))
    client.create_tasks(
        job_id,
        [
            m.BatchTaskCreateOptions(id=f"t{i}", command_line=c, user_identity=ADMIN)
            for i, c in enumerate(commands)
        ],
    )
    return job_id


def task_state(client, job_id, task_id):
    return client.get_task(job_id, task_id).state


SLEEPER = "/bin/sh -c 'echo $$ > pid.txt; exec sleep 60'"


def wait_running(client, job_id, task_id):
    """Wait for a SLEEPER task to run; its process id (it writes it first)."""
    wait_for(
        lambda: task_state(client, job_id, task_id) == m.BatchTaskState.RUNNING,
        timeout=30,
        message=f"{task_id} to run",
    )
    return int(
        wait_for(
            lambda: _pid_file(client, job_id, task_id), timeout=30, message=f"{task_id}'s pid.txt"
        )
    )


def _pid_file(client, job_id, task_id):
    try:
        return b"".join(client.download_task_file(job_id, task_id, "wd/pid.txt")).strip() or None
    except HttpResponseError:
        return None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def disable(client, job_id, mode):
    client.begin_disable_job(
        job_id, m.BatchJobDisableOptions(disable_tasks=mode), polling_interval=0.2
    ).result()


# --- disable / enable --------------------------------------------------------------------


def test_disable_requeue_kills_the_running_task_and_enable_runs_it_again(client15, node):
    job = make_job(client15, "dis-requeue", SLEEPER)
    pid = wait_running(client15, job, "t0")
    disable(client15, job, m.DisableBatchJobOption.REQUEUE)
    got = client15.get_job(job)
    assert (got.state, got.previous_state) == (m.BatchJobState.DISABLED, m.BatchJobState.ACTIVE)
    task = client15.get_task(job, "t0")
    assert (task.state, task.execution_info.requeue_count) == (m.BatchTaskState.ACTIVE, 1)
    wait_for(lambda: gone(pid), timeout=20, message="the requeued task's process to be killed")
    client15.begin_enable_job(job, polling_interval=0.2).result()
    assert client15.get_job(job).state == m.BatchJobState.ACTIVE
    wait_for(
        lambda: task_state(client15, job, "t0") == m.BatchTaskState.RUNNING,
        timeout=30,
        message="t0 again",
    )
    wait_for(
        lambda: _pid_file(client15, job, "t0") not in (None, str(pid).encode()),
        timeout=30,
        message="t0 to run again as a new process",
    )
    client15.begin_terminate_job(
        job, m._models.BatchJobTerminateOptions(termination_reason="done"), polling_interval=0.2
    ).result()


def test_disable_terminate_completes_the_running_task_as_ended(client15, node):
    job = make_job(client15, "dis-terminate", SLEEPER)
    pid = wait_running(client15, job, "t0")
    disable(client15, job, m.DisableBatchJobOption.TERMINATE)
    task = client15.get_task(job, "t0")
    assert (task.state, task.execution_info.result) == (
        m.BatchTaskState.COMPLETED,
        m.BatchTaskExecutionResult.FAILURE,
    )
    assert task.execution_info.failure_info.code == "TaskEnded"
    wait_for(lambda: gone(pid), timeout=20, message="the terminated task's process to be killed")
    assert client15.get_job(job).state == m.BatchJobState.DISABLED


def test_disable_wait_lets_the_task_finish_and_starts_nothing_new(client15, node, tmp_path):
    flag = tmp_path / "go"
    job = make_job(client15, "dis-wait", f"/bin/sh -c 'while [ ! -e {flag} ]; do sleep 0.1; done'")
    wait_for(
        lambda: task_state(client15, job, "t0") == m.BatchTaskState.RUNNING,
        timeout=30,
        message="t0 to run",
    )
    client15.begin_disable_job(
        job,
        m.BatchJobDisableOptions(disable_tasks=m.DisableBatchJobOption.WAIT),
        polling_interval=0.2,
    )
    assert client15.get_job(job).state == m.BatchJobState.DISABLING
    client15.create_task(job, m.BatchTaskCreateOptions(id="later", command_line="/bin/true"))
    with sweeping():
        flag.touch()
        wait_for(
            lambda: client15.get_job(job).state == m.BatchJobState.DISABLED,
            timeout=30,
            message="the job to be disabled once its task ended",
        )
    t0 = client15.get_task(job, "t0")
    assert (t0.state, t0.execution_info.exit_code) == (m.BatchTaskState.COMPLETED, 0)
    assert task_state(client15, job, "later") == m.BatchTaskState.ACTIVE
    client15.begin_enable_job(job, polling_interval=0.2).result()
    wait_for(
        lambda: task_state(client15, job, "later") == m.BatchTaskState.COMPLETED,
        timeout=30,
        message="the task added while disabled to run once enabled",
    )


def test_enable_of_an_active_job_and_disable_of_a_completed_one_are_409(client15, node):
    job = make_job(client15, "dis-refused")
    with pytest.raises(HttpResponseError) as e:
        client15.begin_enable_job(job, polling_interval=0.2).result()
    assert (e.value.status_code, e.value.error.code) == (409, "OperationInvalidForCurrentState")
    client15.begin_terminate_job(
        job, m._models.BatchJobTerminateOptions(termination_reason="x"), polling_interval=0.2
    ).result()
    with pytest.raises(HttpResponseError) as e:
        disable(client15, job, m.DisableBatchJobOption.REQUEUE)
    assert e.value.error.code == "JobCompleted"


# --- job schedules -----------------------------------------------------------------------


def spec(pool_id: str = "nopool") -> m.BatchJobSpecification:
    return m.BatchJobSpecification(
        pool_info=m.BatchPoolInfo(pool_id=pool_id),
        priority=5,
        metadata=[m.BatchMetadataItem(name="from", value="schedule")],
    )


def test_a_short_recurrence_makes_jobs_on_time_and_stops_after_do_not_run_after(
    client15, settings, sdk_account
):
    settings.BATCHSITE_SCHEDULE_MINIMUM_SECONDS = 0.5
    interval = dt.timedelta(seconds=2)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    after = start + 3 * interval + dt.timedelta(seconds=1)  # run times start, +2 s, +4 s, +6 s
    client15.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id="every2s",
            schedule=m.BatchJobScheduleConfiguration(
                do_not_run_until=start, do_not_run_after=after, recurrence_interval=interval
            ),
            job_specification=spec(),
        )
    )
    first = client15.get_job_schedule("every2s")
    assert first.execution_info.next_run_time == start and first.execution_info.recent_job is None
    made = []
    with sweeping():
        for n in range(1, 5):
            job_id = f"every2s:job-{n}"
            job = wait_for(
                lambda job_id=job_id: _job_or_none(client15, job_id),
                timeout=30,
                message=f"{job_id} to be made",
            )
            made.append(job)
            # Not before its run time, and a schedule's job is the one its jobSpecification names.
            assert job.creation_time >= start + (n - 1) * interval
            assert (job.priority, job.pool_info.pool_id, job.state) == (
                5,
                "nopool",
                m.BatchJobState.ACTIVE,
            )
            schedule = client15.get_job_schedule("every2s")
            assert schedule.execution_info.recent_job.id == job_id
            client15.begin_terminate_job(
                job_id,
                m._models.BatchJobTerminateOptions(termination_reason="next"),
                polling_interval=0.2,
            ).result()
        wait_for(
            lambda: client15.get_job_schedule("every2s").state == m.BatchJobScheduleState.COMPLETED,
            timeout=30,
            message="the schedule to complete after doNotRunAfter",
        )
    schedule = client15.get_job_schedule("every2s")
    assert (
        schedule.execution_info.end_time is not None
        and schedule.execution_info.next_run_time is None
    )
    assert sorted(j.id for j in client15.list_jobs_from_schedule("every2s")) == [
        f"every2s:job-{n}" for n in range(1, 5)
    ]


def _job_or_none(client, job_id):
    try:
        return client.get_job(job_id)
    except ResourceNotFoundError:
        return None


def test_get_list_update_replace_disable_enable_terminate_and_delete_a_schedule(client15, settings):
    settings.BATCHSITE_SCHEDULE_MINIMUM_SECONDS = 0.5
    client15.create_job_schedule(
        m.BatchJobScheduleCreateOptions(
            id="ops",
            display_name="the ops one",
            schedule=m.BatchJobScheduleConfiguration(
                recurrence_interval=dt.timedelta(hours=1), start_window=dt.timedelta(minutes=5)
            ),
            job_specification=spec(),
        )
    )
    assert client15.job_schedule_exists("ops")
    got = client15.get_job_schedule("ops")
    assert (got.display_name, got.schedule.recurrence_interval) == (
        "the ops one",
        dt.timedelta(hours=1),
    )
    assert got.execution_info.recent_job.id == "ops:job-1"
    assert [s.id for s in client15.list_job_schedules(filter="state eq 'active'")] == ["ops"]
    assert list(client15.list_job_schedules(filter="state eq 'disabled'")) == []

    client15.update_job_schedule(
        "ops", m.BatchJobScheduleUpdateOptions(metadata=[m.BatchMetadataItem(name="k", value="v")])
    )
    got = client15.get_job_schedule("ops")
    assert got.metadata[0].name == "k" and got.job_specification.priority == 5
    client15.replace_job_schedule(
        "ops",
        m.BatchJobSchedule(
            schedule=m.BatchJobScheduleConfiguration(recurrence_interval=dt.timedelta(hours=2)),
            job_specification=m.BatchJobSpecification(pool_info=m.BatchPoolInfo(pool_id="other")),
        ),
    )
    got = client15.get_job_schedule("ops")
    assert got.metadata is None and got.job_specification.pool_info.pool_id == "other"
    assert (
        got.schedule.recurrence_interval == dt.timedelta(hours=2)
        and got.schedule.start_window is None
    )

    client15.disable_job_schedule("ops")
    assert client15.get_job_schedule("ops").state == m.BatchJobScheduleState.DISABLED
    client15.enable_job_schedule("ops")
    assert client15.get_job_schedule("ops").state == m.BatchJobScheduleState.ACTIVE

    client15.begin_terminate_job_schedule("ops", polling_interval=0.2).result()
    got = client15.get_job_schedule("ops")
    assert (got.state, got.previous_state) == (
        m.BatchJobScheduleState.COMPLETED,
        m.BatchJobScheduleState.TERMINATING,
    )
    job = client15.get_job("ops:job-1")
    assert (job.state, job.execution_info.termination_reason) == (
        m.BatchJobState.COMPLETED,
        "TerminateJobSchedule",
    )
    with pytest.raises(HttpResponseError) as e:
        client15.disable_job_schedule("ops")
    assert (e.value.status_code, e.value.error.code) == (409, "JobScheduleCompleted")

    client15.begin_delete_job_schedule("ops", polling_interval=0.2).result()
    with pytest.raises(ResourceNotFoundError):
        client15.get_job_schedule("ops")
    with pytest.raises(ResourceNotFoundError):
        client15.get_job("ops:job-1")
