"""Times in the reader's zone, in a real browser (issue 12 item 6): a reader in India
(UTC+5:30) sees every <time> in their own time, switches to UTC and keeps that choice,
filters in the zone shown, and live refreshes format their new times too."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from tests.browser.conftest import shot
from tests.factories import TaskFactory

pytestmark = pytest.mark.browser

KOLKATA = "Asia/Kolkata"


@pytest.fixture
def timed(site):
    """Tasks of the site's job created at 04:10, 04:40, 05:00 and 05:20 UTC on 2026-12-01."""
    for task_id, minute in (("at-0410", 10), ("at-0440", 40), ("at-0500", 60), ("at-0520", 80)):
        TaskFactory(
            job=site["job"],
            task_id=task_id,
            creation_time=datetime(2026, 12, 1, 4 + minute // 60, minute % 60, tzinfo=UTC),
        )
    return site


def created_text(page) -> str:
    return page.locator("#task-properties dt:text-is('Created') + dd time").inner_text()


def test_times_are_in_the_readers_zone_and_utc_is_one_press_away_and_remembered(timed, new_page):
    page = new_page("olive", timezone_id=KOLKATA)
    page.goto(reverse("web:task", args=["demo", "render", "at-0440"]))
    assert created_text(page) == "2026-12-01 10:10:00 GMT+5:30"
    created = page.locator("#task-properties dt:text-is('Created') + dd time")
    assert created.get_attribute("datetime") == "2026-12-01T04:40:00Z"
    assert (
        created.get_attribute("title") == "2026-12-01 10:10:00 GMT+5:30 · 2026-12-01 04:40:00 UTC"
    )
    toggle = page.locator("[data-time-toggle]")
    assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "false"
    assert toggle.text_content() == "Times: local (GMT+5:30)"
    toggle.click()
    assert created_text(page) == "2026-12-01 04:40:00 UTC"
    assert toggle.get_attribute("aria-pressed") == "true" and toggle.text_content() == "Times: UTC"
    page.goto(reverse("web:job", args=["demo", "render"]) + "?q=at-0440")
    assert page.locator("tr[data-task=at-0440] time").first.inner_text() == "12-01 04:40:00"
    page.locator("[data-time-toggle]").click()
    assert page.locator("tr[data-task=at-0440] time").first.inner_text() == "12-01 10:10:00"


def test_without_javascript_times_say_utc(timed, chromium, live_server, new_page):
    page = new_page("olive", timezone_id=KOLKATA)
    context = chromium.new_context(
        java_script_enabled=False, timezone_id=KOLKATA, base_url=live_server.url
    )
    try:
        plain = context.new_page()
        plain.context.add_cookies(page.context.cookies())
        plain.goto(reverse("web:task", args=["demo", "render", "at-0440"]))
        assert created_text(plain) == "2026-12-01 04:40:00 UTC"
        assert not plain.locator("[data-time-toggle]").is_visible()
    finally:
        context.close()


def test_a_filter_is_read_in_the_zone_shown(timed, new_page):
    page = new_page("olive", timezone_id=KOLKATA)
    page.goto(reverse("web:job", args=["demo", "render"]))
    assert page.locator("#task-filter [data-tz-label]").first.inner_text() == "GMT+5:30"
    page.fill("#task-filter input[name=since]", "2026-12-01T10:00")
    page.fill("#task-filter input[name=until]", "2026-12-01T10:45")
    page.click("#task-filter button[type=submit]")
    # Chromium names the zone by its older ICU name, Asia/Calcutta: zoneinfo knows both.
    page.wait_for_url(re.compile(r"tz=Asia%2F(Kolkata|Calcutta)"))
    rows = page.locator("#task-table tbody tr[data-task]")
    assert [rows.nth(i).get_attribute("data-task") for i in range(rows.count())] == [
        "at-0440",
        "at-0500",
    ]
    assert page.input_value("#task-filter input[name=since]") == "2026-12-01T10:00"
    shot(page, "time-filter-kolkata")
    # Switching to UTC rewrites the fields in UTC, so the same filter is sent again.
    page.locator("[data-time-toggle]").click()
    assert page.input_value("#task-filter input[name=since]") == "2026-12-01T04:30"
    assert page.input_value("#task-filter input[name=until]") == "2026-12-01T05:15"
    assert page.locator("#task-filter [data-tz-label]").first.inner_text() == "UTC"
    page.click("#task-filter button[type=submit]")
    page.wait_for_url("**tz=UTC**")
    rows = page.locator("#task-table tbody tr[data-task]")
    assert [rows.nth(i).get_attribute("data-task") for i in range(rows.count())] == [
        "at-0440",
        "at-0500",
    ]


def test_a_live_refresh_formats_its_new_times(timed, new_page):
    page = new_page("olive", timezone_id=KOLKATA)
    page.goto(reverse("web:job", args=["demo", "render"]) + "?q=at-0")
    page.evaluate("() => { document.querySelector('#job-live').dataset.old = '1'; }")
    page.wait_for_function("() => !document.querySelector('#job-live').dataset.old", timeout=20_000)
    cells = page.locator("tr[data-task=at-0500] time")
    assert cells.first.inner_text() == "12-01 10:30:00"
    assert "GMT+5:30" in cells.first.get_attribute("title")


def test_a_relative_time_shows_its_absolute_time_on_keyboard_focus(timed, new_page):
    page = new_page("olive", timezone_id=KOLKATA)
    page.goto(reverse("web:node", args=["demo", "local", "local-1"]))
    heartbeat = page.locator("time.rel").first
    assert heartbeat.inner_text().endswith("ago") or heartbeat.inner_text() == "just now"
    after = "el => getComputedStyle(el, '::after').content"
    assert heartbeat.evaluate(after) == "none"
    page.keyboard.press("Tab")
    for _ in range(60):
        if page.evaluate("() => document.activeElement.matches('time.rel')"):
            break
        page.keyboard.press("Tab")
    focused = page.locator("time.rel:focus")
    assert focused.count() == 1
    shown = focused.evaluate(after)
    assert "GMT+5:30" in shown and shown.strip('"') == focused.get_attribute("data-abs")
