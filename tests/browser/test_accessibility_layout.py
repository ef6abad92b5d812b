"""Layout and keyboard, in a real browser (issue 12 items 6 and 8): a 64-character id does
not push columns out of view at 1440 px; on a phone (390 px) the list pages scroll only
downwards and keep the id and state columns; a cut value is shown whole on keyboard focus;
the skip link moves focus to the content. Screenshots of each at both sizes, light and dark."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import LONG_ID, LONG_JOB_ID, shot

pytestmark = pytest.mark.browser

FITS = """sel => { const t = document.querySelector(sel); if (!t) return null;
  const w = t.closest('.table-wrap') || t.parentElement;
  return {table: t.scrollWidth, wrap: w.clientWidth, page: document.documentElement.scrollWidth,
          viewport: window.innerWidth}; }"""
VISIBLE_HEADERS = """sel => Array.from(document.querySelectorAll(sel + ' thead th'))
  .filter(th => th.offsetParent !== null).map(th => th.textContent.trim().replace(/\\s+/g, ' '))"""


def list_pages(s) -> dict[str, tuple[str, str]]:
    """Each list page and its table."""
    return {
        "jobs": (reverse("web:jobs"), "#jobs-table"),
        "tasks": (reverse("web:job", args=["demo", "render"]), "#task-table"),
        "long-tasks": (reverse("web:job", args=["demo", LONG_JOB_ID]), "#task-table"),
        "pools": (reverse("web:pools", args=["demo"]), "#pools-table"),
        "pool-nodes": (reverse("web:pool", args=["demo", "local"]), "#node-table"),
        "schedules": (reverse("web:job-schedules"), "#schedules-table"),
        "audit": (reverse("web:audit"), "#audit-table"),
        "node-files": (
            reverse("web:node-files", args=["demo", "local", "local-1"]),
            "#node-files-table",
        ),
    }


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_at_1440_a_64_character_id_leaves_every_column_in_view(seeded, new_page, dark):
    page = new_page("olive", width=1440, dark=dark)
    for name, (url, table) in list_pages(seeded).items():
        page.goto(url)
        size = page.evaluate(FITS, table)
        if size is None:  # an empty list (the node has no files) draws no table
            assert page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth"
            ), name
        else:
            assert size["table"] <= size["wrap"] + 1, (name, size)
            assert size["page"] <= size["viewport"], (name, size)
        shot(page, f"layout-1440-{'dark' if dark else 'light'}-{name}")


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_on_a_phone_list_pages_need_no_sideways_scroll_and_keep_id_and_state(
    seeded, new_page, dark
):
    page = new_page("olive", phone=True, dark=dark)
    for name, (url, _table) in list_pages(seeded).items():
        page.goto(url)
        page_width = page.evaluate("() => document.documentElement.scrollWidth")
        assert page_width <= 390, (name, page_width)
        shot(page, f"layout-390-{'dark' if dark else 'light'}-{name}")
    page.goto(reverse("web:jobs"))
    assert page.evaluate(VISIBLE_HEADERS, "#jobs-table") == [
        "Job",
        "State",
        "Active",
        "Running",
        "Failed",
    ]
    size = page.evaluate(FITS, "#jobs-table")
    assert size["table"] <= size["wrap"] + 1, size
    page.goto(reverse("web:job", args=["demo", LONG_JOB_ID]))
    headers = page.evaluate(VISIBLE_HEADERS, "#task-table")
    assert headers == ["", "ID ↑", "State", "Result", "Run time"], headers
    size = page.evaluate(FITS, "#task-table")
    assert size["table"] <= size["wrap"] + 1, size


def test_a_cut_id_is_shown_whole_on_keyboard_focus(seeded, new_page):
    page = new_page("olive", width=1440)
    page.goto(reverse("web:job", args=["demo", LONG_JOB_ID]))
    cell = page.locator(f"tr[data-task={LONG_ID}] .trunc").first
    # Cut where its text overflows: the value itself, or the link inside it (no wider than
    # what shows, so it does not crowd the next column's links).
    cut = "el => [el, ...el.children].some(e => e.scrollWidth > e.clientWidth + 1)"
    assert cell.evaluate(cut), "a 64-character id is cut at 1440 px"
    page.locator("#main").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("t => document.activeElement.textContent === t", LONG_ID):
            break
    assert page.evaluate("() => document.activeElement.tagName") == "A"
    assert not cell.evaluate(cut), "focused, the id is shown whole"
    shot(page, "layout-1440-light-long-id-focused")
    # A cut value that is not a link (a failure code) takes focus itself.
    code = page.locator(f"tr[data-task={LONG_ID}] span.trunc[tabindex='0']")
    assert code.evaluate(cut)
    code.focus()
    assert not code.evaluate(cut)
    # A job's display name under its id is shown whole with the id's link focused.
    page.goto(reverse("web:jobs"))
    name = page.locator(f"tr[data-job={LONG_JOB_ID}] div.small .trunc")
    assert name.evaluate(cut)
    page.locator(f"tr[data-job={LONG_JOB_ID}] a[href$='/jobs/{LONG_JOB_ID}/']").focus()
    assert not name.evaluate(cut)


def test_a_cut_id_stays_put_under_the_pointer_and_opens_its_page(seeded, new_page):
    """Hovering or pressing a cut id moves nothing: shown whole in place, it reflowed the
    table under the pointer (the column narrowed to wrap it), so a press on the right of the
    link was released beside it and the click opened nothing. Its title shows it whole."""
    page = new_page("olive", width=1440)
    page.goto(reverse("web:jobs"))
    link = page.locator(f"tr[data-job={LONG_JOB_ID}] a[href$='/jobs/{LONG_JOB_ID}/']")
    cell = page.locator(f"tr[data-job={LONG_JOB_ID}] .trunc[title='{LONG_JOB_ID}']")
    assert cell.evaluate("el => el.firstElementChild.scrollWidth > el.clientWidth + 1"), "cut"
    before = link.bounding_box()
    x, y = before["x"] + before["width"] * 0.8, before["y"] + before["height"] / 2
    page.mouse.move(x, y)
    assert link.bounding_box() == before, "hovering a cut id moved it"
    page.mouse.down()
    assert link.bounding_box() == before, "pressing a cut id moved it"
    page.mouse.up()
    page.wait_for_url(f"**/jobs/{LONG_JOB_ID}/")


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(seeded, new_page):
    page = new_page("olive")
    page.goto(reverse("web:job", args=["demo", "render"]))
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to the content"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")
