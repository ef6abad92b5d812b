"""Fixtures of the rules-layer tests."""

import pytest

from tasks.models import Job
from tasks.operations.counts import BUCKETS, recount_job

COUNTER_FIELDS = [f"{b}_{kind}" for b in BUCKETS for kind in ("count", "slots")]


def counters(job: Job) -> dict[str, int]:
    return dict(Job.objects.filter(pk=job.pk).values(*COUNTER_FIELDS).get())


@pytest.fixture
def assert_counters_true():
    """Assert the job's maintained counters equal a recount from its tasks."""

    def check(job: Job) -> dict[str, int]:
        maintained = counters(job)
        recount_job(job)
        assert maintained == counters(job)
        return maintained

    return check
