"""The node timeline by keyboard (issue 12): one tab stop for the whole chart, the arrow keys
between its bars (a roving tabindex), a "Skip the chart" link, and the same after the range
form swaps the chart in place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.test_file_safety import CSP_LOG, violations_of
from tests.factories import AttemptFactory, TaskFactory

pytestmark = pytest.mark.browser

TIMELINE = "/web/demo/jobs/render/timeline/"

# The focused bar: its rect's geometry and its link, or null when focus is not on a bar.
FOCUSED = """() => {
  const a = document.activeElement.closest && document.activeElement.closest("#node-timeline a");
  if (!a) return null;
  const r = a.querySelector("rect");
  return {x: +r.getAttribute("x"), y: +r.getAttribute("y"), href: a.getAttribute("href")};
}"""
# Every bar's geometry, in document order.
BARS = """() => [...document.querySelectorAll("#node-timeline a rect")].map(
  r => ({x: +r.getAttribute("x"), y: +r.getAttribute("y")}))"""
STOPS = """() => document.querySelectorAll(
  '#node-timeline a:not([tabindex="-1"]), .timeline-scroll[tabindex]').length"""


@pytest.fixture
def crowded(site):
    """The site's job plus a busy node: six runs one after another on one row, and two at
    once on a second row, so that a lane has rows to move between."""
    job = site["job"]
    t0 = timezone.now() - timedelta(minutes=20)
    for i in range(6):
        AttemptFactory(
            task=TaskFactory(job=job, task_id=f"busy-{i}"),
            node_name="local-9",
            claimed=t0 + timedelta(minutes=i),
            start_time=t0 + timedelta(minutes=i),
            end_time=t0 + timedelta(minutes=i, seconds=50),
        )
    AttemptFactory(
        task=TaskFactory(job=job, task_id="busy-overlap"),
        node_name="local-9",
        claimed=t0 + timedelta(minutes=2, seconds=10),
        start_time=t0 + timedelta(minutes=2, seconds=10),
        end_time=t0 + timedelta(minutes=2, seconds=40),
    )
    return site


def test_the_chart_is_one_tab_stop_and_the_arrows_move_between_bars(crowded, new_page):
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto(TIMELINE)
    page.wait_for_selector("#node-timeline[data-roving]")
    bars = page.evaluate(BARS)
    assert len(bars) > 20 and page.evaluate(STOPS) == 1

    # From the link before it, Tab reaches a bar; one more Tab leaves the chart.
    page.focus("#skip-chart")
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUSED)
    assert first == {**bars[0], "href": first["href"]}
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) is None

    # Back into the chart and along its row: right moves later in time on the same row,
    # left comes back, and End reaches the row's last bar.
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == first
    page.keyboard.press("ArrowRight")
    second = page.evaluate(FOCUSED)
    assert second["y"] == first["y"] and second["x"] > first["x"]
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(FOCUSED) == first
    page.keyboard.press("End")
    row = sorted(b["x"] for b in bars if b["y"] == first["y"])
    assert page.evaluate(FOCUSED)["x"] == row[-1]

    # Down moves to the next row (the same lane's second row, or the next lane), up back.
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    below = page.evaluate(FOCUSED)
    assert below["y"] == min(b["y"] for b in bars if b["y"] > first["y"])
    page.keyboard.press("ArrowUp")
    assert page.evaluate(FOCUSED)["y"] == first["y"]

    # Ctrl+End: the chart's last row's last bar. The chart stays one tab stop, and that bar
    # is it: Tab away and back returns to it, not to the first.
    page.keyboard.press("Control+End")
    last = page.evaluate(FOCUSED)
    bottom = max(b["y"] for b in bars)
    assert last["y"] == bottom and last["x"] == max(b["x"] for b in bars if b["y"] == bottom)
    assert page.evaluate(STOPS) == 1
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == last

    # Enter follows the bar's link to its attempt on the task's page.
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/**")
    assert page.locator(f"#{last['href'].split('#')[1]}").count() == 1
    assert violations_of(page) == []


def test_skip_the_chart_and_the_same_keys_after_a_zoom(crowded, new_page, axe_violations):
    page = new_page("olive")
    page.goto(TIMELINE)
    page.wait_for_selector("#node-timeline[data-roving]")
    # "Skip the chart" moves focus past every bar at once.
    page.focus("#skip-chart")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "timeline-after"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) is not None  # the chart's one stop, just before it

    # The zoom swaps the chart in place (htmx): the new one is one tab stop too.
    page.click("#zoom-out")
    page.wait_for_url("**/timeline/?from=*")
    page.wait_for_selector("#node-timeline[data-roving]")
    assert page.evaluate(STOPS) == 1
    page.focus("#skip-chart")
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUSED)
    page.keyboard.press("ArrowRight")
    moved = page.evaluate(FOCUSED)
    assert moved["y"] == first["y"] and moved["x"] > first["x"]
    serious = [v for v in axe_violations(page) if v["impact"] in ("critical", "serious")]
    assert serious == []
