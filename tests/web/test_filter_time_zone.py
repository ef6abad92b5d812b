"""A job's time filters (created/started/ended from-until) are read in the zone the page
shows times in: the form sends it (static/js/time.js fills `tz`), the server converts, and
links, counts and bulk scopes carry it. Without a zone the times are UTC, as the page says."""

import re
from datetime import UTC, datetime

import pytest

from tasks.models import BulkOperation
from tasks.queries.task_list import TaskFilter, parse_zone
from tests.factories import TaskFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    return re.findall(r'<tr data-task="([^"]+)"', response.content.decode())


@pytest.fixture
def timed(job):
    """Tasks created at 04:10, 04:40, 05:00 and 05:20 UTC: 09:40, 10:10, 10:30, 10:50 in India (UTC+5:30)."""
    for task_id, minute in (("t0410", 10), ("t0440", 40), ("t0500", 60), ("t0520", 80)):
        TaskFactory(
            job=job,
            task_id=task_id,
            creation_time=datetime(2026, 12, 1, 4 + minute // 60, minute % 60, tzinfo=UTC),
        )
    return job


@pytest.mark.parametrize("tz", ["Asia/Kolkata", "+05:30", "UTC+0530"])
def test_a_filter_in_utc_plus_5_30_finds_the_tasks_of_that_wall_clock_time(op, timed, tz):
    r = op.get(job_url("job", timed, since="2026-12-01T10:00", until="2026-12-01T10:45", tz=tz))
    assert ids(r) == ["t0440", "t0500"]


def test_without_a_zone_the_same_wall_clock_time_is_utc(op, timed):
    assert ids(
        op.get(job_url("job", timed, since="2026-12-01T04:30", until="2026-12-01T05:15"))
    ) == ["t0440", "t0500"]
    assert (
        ids(op.get(job_url("job", timed, since="2026-12-01T10:00", until="2026-12-01T10:45"))) == []
    )


def test_the_form_shows_the_values_back_in_the_zone_they_were_sent_in(op, timed):
    body = op.get(
        job_url("job", timed, since="2026-12-01T10:00", tz="Asia/Kolkata")
    ).content.decode()
    assert 'name="since" value="2026-12-01T10:00"' in body
    assert 'name="tz" value="Asia/Kolkata" data-tz' in body
    # The links of the page (sort headers, paging) keep the zone with the times.
    assert "since=2026-12-01T10%3A00&amp;time=created&amp;tz=Asia%2FKolkata" in body


def test_a_zone_across_a_daylight_saving_change_uses_that_days_offset(op, job):
    # 2026-07-01 09:00 in New York is 13:00 UTC (EDT, -4); 2026-12-01 09:00 is 14:00 UTC (EST, -5).
    TaskFactory(job=job, task_id="summer", creation_time=datetime(2026, 7, 1, 13, 0, tzinfo=UTC))
    TaskFactory(job=job, task_id="winter", creation_time=datetime(2026, 12, 1, 14, 0, tzinfo=UTC))
    new_york = {"tz": "America/New_York"}
    assert ids(
        op.get(job_url("job", job, since="2026-07-01T09:00", until="2026-07-01T09:01", **new_york))
    ) == ["summer"]
    assert ids(
        op.get(job_url("job", job, since="2026-12-01T09:00", until="2026-12-01T09:01", **new_york))
    ) == ["winter"]


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "+14:30", "+5:75", "x" * 80]
)
def test_an_unknown_zone_is_named_and_lists_nothing(op, timed, tz):
    r = op.get(job_url("job", timed, since="2026-12-01T10:00", tz=tz))
    body = r.content.decode()
    assert r.status_code == 200 and ids(r) == []
    assert 'id="filter-errors"' in body and "Time zone:" in body


def test_a_bulk_action_acts_on_the_tasks_the_zone_chose(op, timed):
    scope = {"since": "2026-12-01T10:00", "until": "2026-12-01T10:45", "tz": "Asia/Kolkata"}
    body = op.get(job_url("job-bulk", timed, action="terminate", **scope)).content.decode()
    assert 'id="bulk-count">2<' in body
    op.post(job_url("job-bulk", timed), {"action": "terminate", **scope})
    bulk = BulkOperation.objects.get()
    again = TaskFilter.from_params(bulk.scope["filter"])
    assert again.since == datetime(2026, 12, 1, 4, 30, tzinfo=UTC) and again.until == datetime(
        2026, 12, 1, 5, 15, tzinfo=UTC
    )


def test_parse_zone_reads_names_and_offsets():
    assert parse_zone("") == (None, "")
    assert str(parse_zone("Asia/Kolkata")[0]) == "Asia/Kolkata"
    assert parse_zone("-08:00")[0].utcoffset(None).total_seconds() == -8 * 3600
    assert parse_zone("UTC+5")[0].utcoffset(None).total_seconds() == 5 * 3600
    assert parse_zone("Asia/Nowhere")[1] == "Unknown time zone 'Asia/Nowhere'."
