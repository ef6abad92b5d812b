"""Layout seen wrong in last session's screenshots, each measured in the browser: the
audit page's "Who" filter shows its whole placeholder on a desktop, a phone's node page
shows the task names of its latest runs whole, a chart wider than a phone says that it
scrolls sideways (and takes the keyboard's focus to be scrolled), and the node timeline's
card has no empty band above its first line."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import ComputeNode
from tests.browser.conftest import shot
from tests.factories import AttemptFactory, TaskFactory

pytestmark = pytest.mark.browser

# 27 characters after "render / ": last session's phone showed about 10 of them.
LONG_TASK = "frame-0042-final-composite"


@pytest.fixture
def long_run(seeded):
    node = ComputeNode.objects.get(node_id="local-1")
    end = timezone.now() - timedelta(minutes=1)
    task = TaskFactory(
        job=seeded["job"],
        task_id=LONG_TASK,
        state="completed",
        result="success",
        exit_code=0,
        node=node,
        node_name=node.node_id,
        pool_id="local",
        start_time=end - timedelta(seconds=30),
        end_time=end,
    )
    AttemptFactory(
        task=task,
        node=node,
        claimed=end - timedelta(seconds=31),
        start_time=task.start_time,
        end_time=end,
        outcome="succeeded",
        exit_code=0,
    )
    return task


def test_the_who_filter_shows_its_whole_placeholder_on_a_desktop(seeded, new_page):
    page = new_page("olive", width=1440)
    page.goto("/web/audit/")
    shot(page, "60-audit-desktop")
    room, needed = page.locator("input[name=actor]").evaluate(
        """input => {
          const style = getComputedStyle(input);
          const ctx = document.createElement("canvas").getContext("2d");
          ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
          const room = input.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight);
          return [room, ctx.measureText(input.placeholder).width];
        }"""
    )
    assert needed <= room, (needed, room)


@pytest.mark.parametrize("dark", [False, True])
def test_a_phone_shows_the_task_names_of_the_latest_runs_whole(long_run, new_page, dark):
    page = new_page("olive", phone=True, dark=dark)
    page.goto("/web/demo/pools/local/nodes/local-1/")
    shot(page, f"60-node-{'dark' if dark else 'light'}-phone")
    cell = page.locator(f"#node-recent .trunc[title$='/ {LONG_TASK}']")
    # The link inside clips itself (text-overflow: ellipsis): measure both.
    cut = cell.evaluate(
        "span => Math.max(...[span, span.querySelector('a')].map(e => e.scrollWidth - e.clientWidth))"
    )
    assert cut <= 1, f"the name is cut by {cut}px"
    assert LONG_TASK in cell.inner_text().replace("\n", "")
    # Wrapped in its column, not pushing the page sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


CHARTS = [
    ("/web/demo/jobs/render/analytics/", "analytics"),
    ("/web/demo/jobs/render/timeline/", "timeline"),
]


def chart_boxes(page) -> list[dict]:
    return page.locator(".chart-scroll").evaluate_all(
        """boxes => boxes.map(box => {
          // The box is a tab stop (the arrow keys scroll it), or the timeline's one bar is.
          const hint = box.parentElement.querySelector(".scroll-hint");
          return {scrolls: box.scrollWidth > box.clientWidth + 1, focusable: box.tabIndex === 0 || !!box.querySelector("[tabindex='0']"),
                  named: !!box.getAttribute("aria-label"),
                  hint: !!hint && hint.checkVisibility() && hint.textContent.includes("sideways")};
        })"""
    )


@pytest.mark.parametrize(("path", "name"), CHARTS)
def test_a_chart_wider_than_a_phone_says_that_it_scrolls_sideways(
    seeded, new_page, axe_violations, path, name
):
    page = new_page("olive", phone=True)
    page.goto(path)
    shot(page, f"60-{name}-phone")
    boxes = chart_boxes(page)
    assert boxes and all(b["scrolls"] for b in boxes), boxes
    assert all(b["hint"] and b["focusable"] and b["named"] for b in boxes), boxes
    serious = [v for v in axe_violations(page) if v["impact"] in ("critical", "serious")]
    assert not serious, serious


@pytest.mark.parametrize(("path", "name"), CHARTS)
def test_on_a_desktop_the_charts_fit_and_say_nothing_of_scrolling(seeded, new_page, path, name):
    page = new_page("olive", width=1440)
    page.goto(path)
    shot(page, f"60-{name}-desktop")
    boxes = chart_boxes(page)
    assert boxes and not any(b["scrolls"] or b["hint"] for b in boxes), boxes


def test_the_timeline_card_has_no_empty_band_above_its_first_line(seeded, new_page):
    page = new_page("olive", width=1440)
    page.goto("/web/demo/jobs/render/timeline/")
    band = page.locator("section.card:has(#timeline-what)").evaluate(
        """card => {
          const style = getComputedStyle(card);
          const inner = card.getBoundingClientRect().top + parseFloat(style.borderTopWidth)
            + parseFloat(style.paddingTop);
          return card.firstElementChild.getBoundingClientRect().top - inner;
        }"""
    )
    assert abs(band) <= 1, f"{band}px between the card's padding and its first line"
