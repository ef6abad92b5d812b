"""`manage.py sweep` makes a job schedule's job at its run time between its full passes
(every BATCHSITE_SCHEDULE_TICK_SECONDS), and a database error in that frequent pass does not
end it."""

from __future__ import annotations

import io
import logging
import os
import signal
from datetime import timedelta

from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from tasks.models import Job
from tasks.operations.job_schedules import add_job_schedule
from tests.factories import AccountFactory


class FailFrequentPassOnceThenStopWhenAJobIsMade:
    """The second look for due schedules (the first frequent pass: the full pass made the
    first) fails as on a connection whose server restarted; at the look after a job row was
    inserted, stop the sweep as `serve` would (SIGTERM)."""

    def __init__(self) -> None:
        self.looks, self.made = 0, False

    def __call__(self, execute, sql, params, many, context):
        if (
            '"tasks_jobschedule"."next_run_time" <=' in sql
        ):  # run_job_schedules' look for due schedules
            if self.made:  # the next look, after the job's transaction committed
                os.kill(os.getpid(), signal.SIGTERM)
            self.looks += 1
            if self.looks == 2:
                raise OperationalError("terminating connection due to administrator command")
        result = execute(sql, params, many, context)
        if (
            sql.lstrip().upper().startswith("INSERT")
            and '"tasks_job"' in sql
            and "tasks_jobschedule" not in sql
        ):
            self.made = True
        return result


def test_a_schedules_job_comes_between_full_sweeps_after_a_database_error(
    transactional_db, settings, caplog
):
    settings.BATCHSITE_SCHEDULE_TICK_SECONDS = 0.05
    add_job_schedule(
        AccountFactory(),
        spec={
            "id": "soon",
            "schedule": {"doNotRunUntil": timezone.now() + timedelta(seconds=1.5)},
            "jobSpecification": {"poolInfo": {"poolId": "p"}},
        },
    )
    assert not Job.objects.exists()
    wrapper = FailFrequentPassOnceThenStopWhenAJobIsMade()
    with (
        caplog.at_level(logging.WARNING, logger="batchsite.sweep"),
        connection.execute_wrapper(wrapper),
    ):
        # Full passes 10 minutes apart: only the frequent pass can make the job in time.
        call_command("sweep", "--interval", "600", stdout=io.StringIO())
    assert "database error in a frequent pass" in caplog.text
    assert list(Job.objects.values_list("job_id", flat=True)) == ["soon:job-1"]
