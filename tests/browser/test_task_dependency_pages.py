"""The task page's dependency list pages through a large dependsOn: Next and Previous swap
the live region (htmx) and push the URL, the live refresh keeps the page shown, and the
pager reads well at desktop and phone widths, light and dark."""

from __future__ import annotations

import re
import time

import pytest

from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task, add_task_collection
from tests.browser.conftest import AXE_FAILING, SHOTS, shot
from tests.execution import claim, finish, make_node

pytestmark = pytest.mark.browser

# A pattern, not a Python predicate: with a predicate every request of the page waits for
# this process to match it, and the held one would hold them all.
NEXT_PAGE = re.compile(r".*[?&]dependencies_after=.*")


def shown(page) -> list[str]:
    return page.locator("#dependency-list tbody tr[data-dependency]").evaluate_all(
        "rows => rows.map(r => r.dataset.dependency)"
    )


def shot_section(page, name: str) -> None:
    """The page, and the dependency section alone (<SHOTS>/<name>-section.png).

    The live region is swapped every 2 s, and an element screenshot waits for its element to
    be stable, so a swap during it detaches the element (a slow machine saw that): htmx's
    requests are held back (htmx:beforeRequest cancelled) and any in flight is let land
    before the picture, then let go again."""
    shot(page, name)
    page.evaluate(
        "() => { window.__holdHtmx = e => e.preventDefault();"
        " document.body.addEventListener('htmx:beforeRequest', window.__holdHtmx); }"
    )
    try:
        page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling')")
        page.locator("#task-dependencies").screenshot(path=str(SHOTS / f"{name}-section.png"))
    finally:
        page.evaluate(
            "() => document.body.removeEventListener('htmx:beforeRequest', window.__holdHtmx)"
        )


@pytest.fixture
def fan_in(site):
    """Job fan-in: tasks 1-120 (1 failed with exit 7, the rest active) and "reduce", which
    depends on 1-130 (121-130 not added yet): three pages of dependencies."""
    account = site["account"]
    pool = add_pool(account, spec={"id": "deps", "vmSize": "local"})
    node = make_node(pool, "d1", slots=1)
    job = add_job(
        account, spec={"id": "fan-in", "poolInfo": {"poolId": "deps"}, "usesTaskDependencies": True}
    )
    specs = [{"id": str(i), "commandLine": "/bin/true"} for i in range(1, 121)]
    for chunk in (specs[:100], specs[100:]):  # at most 100 tasks a collection
        add_task_collection(job, specs=chunk, ids=[s["id"] for s in chunk])
    [first] = claim(node)
    finish(first, 7)  # task 1 fails: it blocks, on every page
    add_task(
        job,
        spec={
            "id": "reduce",
            "commandLine": "/bin/true",
            "dependsOn": {"taskIdRanges": [{"start": 1, "end": 130}]},
        },
    )


def first_shown_is(page, task_id: str) -> None:
    """Wait until the dependency list's first row is `task_id`."""
    page.wait_for_function(
        "id => document.querySelector('#dependency-list tr[data-dependency]')"
        ".dataset.dependency === id",
        arg=task_id,
    )


def test_a_page_asked_for_while_the_region_refreshes_is_the_page_shown(fan_in, new_page):
    """Next's answer is slow (held 5 s here) and the task page's 2 s refresh comes due while
    it is on its way. Had the refresh gone out and landed first, its swap would have taken
    the region Next's answer was for off the page and the click would be lost (CI once saw
    that, with no hold): a refresh does not go out while a request of the reader's for its
    region is on its way, and one on its way when the reader clicks is dropped."""
    page = new_page("olive")
    page.goto("/web/demo/jobs/fan-in/tasks/reduce/")
    page.evaluate(
        """() => {
          window.__refreshesDue = 0;
          document.body.addEventListener('htmx:beforeRequest', e => {
            if (e.detail.elt.id === 'task-live' && window.__nextPending) window.__refreshesDue++;
          });
        }"""
    )

    def slow(route):
        time.sleep(5)  # the driver holds the request; the page's other requests go on
        route.continue_()

    page.route(NEXT_PAGE, slow)
    page.evaluate("() => { window.__nextPending = true; }")
    page.click("#dependencies-next")
    first_shown_is(page, "51")
    page.evaluate("() => { window.__nextPending = false; }")
    assert page.evaluate("window.__refreshesDue") >= 1  # the race was run
    assert shown(page) == [str(i) for i in range(51, 101)]
    assert "dependencies_after=" in page.url
    page.unroute(NEXT_PAGE)
    page.wait_for_timeout(2500)  # the next refresh asks for page 2 again
    assert shown(page) == [str(i) for i in range(51, 101)]


def test_next_and_previous_page_the_dependencies_and_the_refresh_keeps_the_page(
    fan_in, new_page, axe_violations
):
    page = new_page("olive")
    page.goto("/web/demo/jobs/fan-in/tasks/reduce/")
    assert shown(page) == [str(i) for i in range(1, 51)]
    assert "1–50 of 130" in page.inner_text("#dependency-range")
    assert page.locator("#dependencies-prev").count() == 0
    page.click("#dependencies-next")
    first_shown_is(page, "51")
    assert shown(page) == [str(i) for i in range(51, 101)]
    assert "dependencies_after=" in page.url
    assert "1 (exit 7)" in page.inner_text("#dependency-blocking")
    page.wait_for_timeout(4500)  # two refreshes of the live region (every 2 s)
    assert shown(page) == [str(i) for i in range(51, 101)]
    failing = [v for v in axe_violations(page) if v["impact"] in AXE_FAILING]
    assert not failing, failing
    shot_section(page, "dependencies-01-page-2-desktop-light")

    page.click("#dependencies-next")
    first_shown_is(page, "101")
    rows = shown(page)
    assert rows == [str(i) for i in range(101, 131)]
    assert page.locator("#dependencies-next").count() == 0
    missing = page.locator("#dependency-list tr[data-dependency='125']").inner_text()
    assert "not added yet" in missing
    page.click("#dependencies-prev")
    first_shown_is(page, "51")
    page.go_back()  # the pushed URL of page 3 reloads page 3
    first_shown_is(page, "101")

    for dark in (False, True):
        for phone in (False, True):
            if not dark and not phone:
                continue
            other = new_page("olive", dark=dark, phone=phone)
            other.goto("/web/demo/jobs/fan-in/tasks/reduce/")
            other.click("#dependencies-next")
            other.wait_for_url("**dependencies_after=**")
            first_shown_is(other, "51")
            name = f"{'phone' if phone else 'desktop'}-{'dark' if dark else 'light'}"
            shot_section(other, f"dependencies-02-page-2-{name}")
