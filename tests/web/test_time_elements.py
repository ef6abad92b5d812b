"""Every time the dashboard shows is a <time datetime="...Z"> element (the `at` filter), in
UTC and labelled so for a reader without JavaScript; static/js/time.js rewrites them in the
reader's zone. A relative time keeps its absolute time for hover and keyboard focus."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tasks.templatetags.batchweb import at
from tests.factories import AttemptFactory, ComputeNodeFactory, PoolFactory, TaskFactory
from tests.web.conftest import task_url

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 12, 1, 10, 5, 9, 250000, tzinfo=UTC)


def test_a_moment_is_a_time_element_in_utc_labelled_utc():
    assert at(MOMENT) == (
        '<time datetime="2026-12-01T10:05:09.250000Z" data-fmt="full" '
        'title="2026-12-01 10:05:09 UTC">2026-12-01 10:05:09 UTC</time>'
    )


@pytest.mark.parametrize(
    "style, text",
    [
        ("minute", "2026-12-01 10:05 UTC"),
        ("short", "12-01 10:05:09 UTC"),
        ("clock", "10:05:09 UTC"),
        ("date", "2026-12-01 UTC"),
        ("no-such-style", "2026-12-01 10:05:09 UTC"),
    ],
)
def test_each_style_writes_its_own_form(style, text):
    assert f">{text}</time>" in at(MOMENT, style)


def test_a_moment_in_another_zone_is_written_in_utc():
    from zoneinfo import ZoneInfo

    html = at(MOMENT.astimezone(ZoneInfo("Asia/Kolkata")))
    assert 'datetime="2026-12-01T10:05:09.250000Z"' in html and ">2026-12-01 10:05:09 UTC<" in html


def test_a_wire_form_string_is_read_and_anything_else_left_alone():
    assert 'datetime="2026-12-01T10:05:09.250000Z"' in at("2026-12-01T10:05:09.2500000Z")
    assert at(None) == "" and at("") == "" and at("not a time") == "not a time"


def test_a_relative_time_keeps_the_absolute_one_for_hover_and_focus():
    html = at(timezone.now() - timedelta(seconds=185), "rel")
    assert re.search(
        r'<time class="rel" datetime="[^"]+Z" data-fmt="rel" data-abs="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC" '
        r'title="[^"]+ UTC" tabindex="0">3m 0[56]s ago</time>',
        html,
    ), html


def test_a_value_that_is_not_a_time_is_escaped_in_a_page():
    from django.template import Context, Template

    assert (
        Template("{% load batchweb %}{{ v|at }}").render(Context({"v": "<b>x</b>"}))
        == "&lt;b&gt;x&lt;/b&gt;"
    )


CLOCK = re.compile(r"\d\d:\d\d:\d\d")


def times_outside_time_elements(html: str) -> list[str]:
    """Clock times in the page's text that no <time> element holds (attributes and scripts aside)."""
    body = html.split("<body", 1)[1]
    body = re.sub(r"<time\b[^>]*>.*?</time>", "", body, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", body)
    return CLOCK.findall(text)


def test_the_task_and_node_pages_show_every_time_as_a_time_element(op, job):
    pool = PoolFactory(account=job.account, pool_id="p1")
    node = ComputeNodeFactory(pool=pool, node_id="n1", state="running")
    now = timezone.now()
    task = TaskFactory(
        job=job,
        task_id="t1",
        state="completed",
        result="success",
        exit_code=0,
        node=node,
        node_name="n1",
        pool_id="p1",
        start_time=now - timedelta(minutes=3),
        end_time=now,
        last_retry_time=now - timedelta(minutes=2),
    )
    AttemptFactory(
        task=task,
        node=node,
        claimed=now - timedelta(minutes=3),
        start_time=now - timedelta(minutes=3),
        end_time=now,
    )
    from django.urls import reverse

    for url in (
        task_url("task", task),
        reverse("web:job", args=[job.account.name, job.job_id]),
        reverse("web:node", args=[job.account.name, "p1", "n1"]),
        reverse("web:pool", args=[job.account.name, "p1"]),
    ):
        html = op.get(url).content.decode()
        assert "<time " in html, url
        assert times_outside_time_elements(html) == [], url
