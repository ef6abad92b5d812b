"""Adds to one job from concurrent transactions (PostgreSQL: row locks). Adds share the
job's row (FOR KEY SHARE), so they do not wait for each other; the unique index decides
between two adds of one id; the job's own operations (FOR UPDATE) still exclude them."""

import threading

import pytest
from django.db import connection, transaction

from tasks.errors import BatchError
from tasks.models import Job, Task
from tasks.operations import tasks as task_ops
from tasks.operations.tasks import add_task, add_task_collection
from tests.factories import JobFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serializes writers whole"),
]


def spec(task_id):
    return {"id": task_id, "commandLine": "/bin/true"}


class Held:
    """Runs `work` in a transaction on another connection and keeps it open until
    released; `error` is what it raised."""

    def __init__(self, work):
        self.work, self.error, self.result = work, None, None
        self.ready, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        assert self.ready.wait(30), "the held transaction did not start"

    def _run(self):
        try:
            with transaction.atomic():
                self.result = self.work()
                self.ready.set()
                self.release.wait(30)
        except BatchError as error:
            self.error = error
        finally:
            self.ready.set()
            connection.close()

    def finish(self):
        self.release.set()
        self.thread.join(30)


def in_thread(work):
    """Start `work` on another connection; the returned function joins it and gives its
    result (or raises what it raised)."""
    out = {}

    def run():
        try:
            out["result"] = work()
        except Exception as error:  # noqa: BLE001 - handed to the test's thread
            out["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join(30)
        assert not thread.is_alive(), "still waiting"
        if "error" in out:
            raise out["error"]
        return out["result"]

    return join


def waits_on_a_lock():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_an_add_does_not_wait_for_another_adds_hold_on_the_job(assert_counters_true):
    # The other add between its lock and its insert (its counters' UPDATE, the last
    # statement before its commit, would hold this one's until it commits).
    job = JobFactory()
    held = Held(lambda: task_ops._lock_job_for_adding(job))
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # A wait for the held add's locks would end in an error, not the add.
                cursor.execute("SET LOCAL lock_timeout = '10s'")
            results = add_task_collection(job, specs=[spec("b"), spec("c")], ids=["b", "c"])
    finally:
        held.finish()
    assert held.error is None
    assert [r.error for r in results] == [None, None]
    assert sorted(Task.objects.filter(job=job).values_list("task_id", flat=True)) == ["b", "c"]
    assert assert_counters_true(job)["active_count"] == 2


def test_of_two_concurrent_adds_of_one_id_the_second_waits_and_gets_task_exists(
    assert_counters_true,
):
    job = JobFactory()
    held = Held(lambda: add_task(job, spec=spec("same")))
    try:
        second = in_thread(
            lambda: add_task_collection(job, specs=[spec("SAME"), spec("x")], ids=["SAME", "x"])
        )
        for _ in range(300):
            if waits_on_a_lock():
                break
            threading.Event().wait(0.05)
    finally:
        held.finish()
    results = second()
    assert [(r.task_id, r.error.code if r.error else "ok") for r in results] == [
        ("SAME", "TaskExists"),
        ("x", "ok"),
    ]
    assert Task.objects.filter(job=job, id_key="same").count() == 1
    assert assert_counters_true(job)["active_count"] == 2


def test_an_add_waits_for_the_jobs_own_operation_and_judges_what_it_left():
    job = JobFactory()

    def terminating():
        Job.objects.select_for_update().get(pk=job.pk)
        Job.objects.filter(pk=job.pk).update(state=Job.State.TERMINATING)

    held = Held(terminating)
    try:
        adding = in_thread(lambda: add_task(job, spec=spec("late")))
        for _ in range(300):
            if waits_on_a_lock():
                break
            threading.Event().wait(0.05)
    finally:
        held.finish()
    with pytest.raises(BatchError) as info:
        adding()
    assert info.value.code == "JobBeingTerminated"
    assert not Task.objects.filter(job=job).exists()
