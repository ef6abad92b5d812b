"""The hot path's shortcuts past Django's generic machinery must leave instances exactly
as Django's own would: tasks.operations.fast_insert.new_instance and sql.link."""

import pytest

from tasks import sql
from tasks.models import Attempt, Job, Task
from tasks.operations.fast_insert import new_instance


def fields(obj):
    return {k: v for k, v in obj.__dict__.items() if k != "_state"}


@pytest.mark.parametrize(
    "model, related, values",
    [
        (
            Task,
            {"job": Job(pk=7)},
            {"task_id": "A", "id_key": "a", "command_line": "/bin/true", "spec": {"x": 1}},
        ),
        (Attempt, {"job": Job(pk=7), "task": Task(pk=9)}, {"number": 2, "task_dir": "/d"}),
    ],
)
def test_new_instance_is_what_the_constructor_makes(model, related, values):
    fast, slow = new_instance(model, related, **values), model(**related, **values)
    assert fields(fast) == fields(slow)
    assert fast._state.adding and fast._state.db is None
    for name, other in related.items():
        assert getattr(fast, name) is other


def test_callable_defaults_are_made_afresh_for_each_instance():
    a, b = new_instance(Task, {"job": Job(pk=1)}), new_instance(Task, {"job": Job(pk=1)})
    assert a.spec == {} and a.spec is not b.spec


def test_link_sets_the_id_and_the_cached_object_as_assignment_does():
    job = Job(pk=3)
    fast, slow = Task(), Task()
    sql.link(fast, "job", job)
    slow.job = job
    assert fields(fast) == fields(slow) and fast.job is job


@pytest.mark.django_db
def test_datetimes_are_stored_as_the_backend_stores_them():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from django.db import connection

    prep = sql.preparers(Task, ["creation_time"])[0]
    t = dt.datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=dt.UTC)
    for value in [t, t, t.replace(microsecond=0), t.astimezone(ZoneInfo("Europe/Paris")), t, None]:
        assert prep(value) == connection.ops.adapt_datetimefield_value(value)


@pytest.mark.django_db
def test_hand_written_statements_fail_with_djangos_exceptions():
    from django.db import DatabaseError, IntegrityError, transaction

    # (each in its own savepoint: PostgreSQL refuses everything after an error otherwise)
    with pytest.raises(DatabaseError), transaction.atomic():
        sql.run("SELECT * FROM no_such_table WHERE id = %s", [1])
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.run(
            'INSERT INTO "tasks_account" ("name", "primary_key", "secondary_key") VALUES (%s, %s, %s)',
            [None, "k", ""],
        )
    rows, count = sql.run('SELECT COUNT(*) FROM "tasks_account" WHERE "name" = %s', ["nobody"])
    assert rows == [(0,)]


@pytest.mark.django_db
def test_select_with_loads_the_related_rows_once_each_as_the_orm_would():
    from django.utils import timezone

    from tests.factories import TaskFactory

    task = TaskFactory(running=True)
    first = Attempt.objects.create(task=task, job=task.job, claimed=timezone.now())
    second = Attempt.objects.create(task=task, job=task.job, claimed=timezone.now(), subtask_id=1)
    rows = sql.select_with(
        Attempt,
        ["task_id", "subtask_id"],
        [("task", ["state", "retry_count"]), ("job", ["state"])],
        sql.pk_in([first.pk, second.pk]),
        [first.pk, second.pk],
        order="{id}",
    )
    assert [a.pk for a, _, _ in rows] == [first.pk, second.pk]
    assert rows[0][1] is rows[1][1] and rows[0][2] is rows[1][2]  # one task, one job
    loaded, orm = rows[0][1], Task.objects.only("state", "retry_count").get(pk=task.pk)
    assert (loaded.pk, loaded.state, loaded.retry_count) == (orm.pk, orm.state, orm.retry_count)
    assert rows[1][0].subtask_id == 1 and rows[0][2].pk == task.job_id
