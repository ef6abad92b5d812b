"""axe-core on every dashboard page, light and dark (issue 12): no critical and no serious
violation anywhere, the confirm dialog open included.

Every page the dashboard serves is in PAGES, keyed by its URL name in tasks/web/urls.py;
`test_every_dashboard_page_is_checked` fails when a URL name is in neither PAGES nor
NOT_PAGES, so a new page cannot go unchecked. Adding a page: a line in PAGES naming the URLs
to visit (built from the `seeded` objects; add what the page needs to `seeded`)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.browser.conftest import AXE_FAILING, LONG_ID, LONG_JOB_ID, describe_violations

pytestmark = pytest.mark.browser


def _task(s, task_id: str) -> list[str]:
    return [reverse("web:task", args=["demo", s["job"].job_id, task_id])]


# URL name -> the URLs to visit, from the objects `seeded` made. One list per page so that a
# page in several states (a task in each state) is visited in each.
PAGES = {
    "jobs": lambda s: [
        reverse("web:jobs"),
        reverse("web:jobs") + "?tab=completed&q=nothing-matches",
    ],
    "audit": lambda s: [reverse("web:audit")],
    "bulk": lambda s: [reverse("web:bulk", args=[s["bulk"].pk])],
    "pool-index": lambda s: [reverse("web:pool-index")],
    "pools": lambda s: [reverse("web:pools", args=["demo"])],
    "pool": lambda s: [reverse("web:pool", args=["demo", "local"])],
    "pool-resize": lambda s: [reverse("web:pool-resize", args=["demo", "local"])],
    "pool-stop-resize": lambda s: [reverse("web:pool-stop-resize", args=["demo", "local"])],
    "pool-enable-autoscale": lambda s: [
        reverse("web:pool-enable-autoscale", args=["demo", "local"])
    ],
    "pool-disable-autoscale": lambda s: [
        reverse("web:pool-disable-autoscale", args=["demo", "local"])
    ],
    "pool-evaluate-autoscale": lambda s: [
        reverse("web:pool-evaluate-autoscale", args=["demo", "local"])
    ],
    "pool-delete": lambda s: [reverse("web:pool-delete", args=["demo", "local"])],
    "node": lambda s: [reverse("web:node", args=["demo", "local", "local-1"])],
    "node-output": lambda s: [reverse("web:node-output", args=["demo", "local", "local-1"])],
    "node-files": lambda s: [reverse("web:node-files", args=["demo", "local", "local-1"])],
    "node-action": lambda s: [
        reverse(f"web:node-{a}", args=["demo", "local", "local-1"]) for a in ("reboot", "remove")
    ],
    "job-schedules": lambda s: [reverse("web:job-schedules")],
    "job-schedule": lambda s: [reverse("web:job-schedule", args=["demo", "nightly"])],
    "job-schedule-action": lambda s: [
        reverse("web:job-schedule-terminate", args=["demo", "nightly"])
    ],
    "job": lambda s: [
        reverse("web:job", args=["demo", "render"]),
        reverse("web:job", args=["demo", "render"]) + "?result=failure&sort=-ended",
        reverse("web:job", args=["demo", "render"]) + "?since=not-a-date",
        reverse("web:job", args=["demo", LONG_JOB_ID]),
    ],
    "job-disable": lambda s: [reverse("web:job-disable", args=["demo", "render"])],
    "job-enable": lambda s: [reverse("web:job-enable", args=["demo", "render"])],
    "job-bulk": lambda s: [
        reverse("web:job-bulk", args=["demo", "render"]) + "?action=terminate&result=failure"
    ],
    "job-triage": lambda s: [reverse("web:job-triage", args=["demo", "render"])],
    "job-timeline": lambda s: [reverse("web:job-timeline", args=["demo", "render"])],
    "job-analytics": lambda s: [reverse("web:job-analytics", args=["demo", "render"])],
    "job-update": lambda s: [reverse("web:job-update", args=["demo", "render"])],
    "job-terminate": lambda s: [reverse("web:job-terminate", args=["demo", "render"])],
    "job-delete": lambda s: [reverse("web:job-delete", args=["demo", "render"])],
    "task-add": lambda s: [reverse("web:task-add", args=["demo", "render"])],
    "task": lambda s: [
        *_task(s, "frame-000"),
        *_task(s, "frame-001"),
        *_task(s, "frame-004"),
        *_task(s, "live-1"),
        *_task(s, "mpi-solve"),
        *_task(s, "blocked-1"),
        reverse("web:task", args=["demo", LONG_JOB_ID, LONG_ID]),
    ],
    "task-terminate": lambda s: [reverse("web:task-terminate", args=["demo", "render", "live-1"])],
    "task-reactivate": lambda s: [
        reverse("web:task-reactivate", args=["demo", "render", "frame-001"])
    ],
    "task-delete": lambda s: [reverse("web:task-delete", args=["demo", "render", "frame-000"])],
    "task-update": lambda s: [reverse("web:task-update", args=["demo", "render", "frame-004"])],
    "task-output": lambda s: [
        reverse("web:task-output", args=["demo", "render", "frame-001"]),
        reverse("web:task-output", args=["demo", "render", "mpi-solve"]) + "?instance=2",
    ],
    # Not found: a job, a task (which links back to its job), a pool, a node.
    "404": lambda s: [
        reverse("web:job", args=["demo", "no-such-job"]),
        reverse("web:task", args=["demo", "render", "no-such-task"]),
        reverse("web:pool", args=["demo", "no-such-pool"]),
        reverse("web:node", args=["demo", "local", "no-such-node"]),
    ],
}
# URL names that are not pages: fragments, downloads, POST-only actions, and the node
# actions (one page for all, "node-action" above).
NOT_PAGES = {
    "job-count",
    "job-export",
    "task-output-chunk",
    "task-file",
    "node-file",
    "bulk-stop",
    "job-schedule-disable",
    "job-schedule-enable",
}
GROUPED = {"node-action": "node-", "job-schedule-action": "job-schedule-"}


def _web_names() -> set[str]:
    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, p.namespace or namespace)
            elif isinstance(p, URLPattern) and namespace == "web" and p.name:
                yield p.name

    return set(walk(get_resolver().url_patterns))


def test_every_dashboard_page_is_checked():
    from tasks.operations.pool_actions import NODE_ACTIONS

    grouped = {f"node-{a}" for a in NODE_ACTIONS} | {"job-schedule-terminate"}
    unchecked = _web_names() - set(PAGES) - NOT_PAGES - grouped
    assert not unchecked, (
        f"dashboard pages that the axe test does not visit: add them to PAGES: {sorted(unchecked)}"
    )


def _urls(seeded) -> list[str]:
    return [url for build in PAGES.values() for url in build(seeded)]


def _check(page, url: str, axe_violations, found: dict) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    violations = axe_violations(page)
    failing = [v for v in violations if v["impact"] in AXE_FAILING]
    if failing:
        found[url] = failing


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_no_page_has_a_critical_or_serious_violation(seeded, new_page, axe_violations, dark):
    page = new_page("olive", dark=dark)
    found: dict[str, list[dict]] = {}
    for url in _urls(seeded):
        _check(page, url, axe_violations, found)
    # The confirm dialog, open over the task page.
    page.goto(reverse("web:task", args=["demo", "render", "live-1"]))
    page.click("#task-actions a.btn.danger")
    page.wait_for_selector("#task-dialog[role=dialog] .card")
    violations = [v for v in axe_violations(page) if v["impact"] in AXE_FAILING]
    if violations:
        found["task page, terminate dialog open"] = violations
    assert not found, "axe-core found critical or serious violations:\n" + describe_violations(
        found
    )


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_a_viewer_and_the_sign_in_page_have_none_either(
    seeded, chromium, live_server, new_page, axe_violations, dark
):
    found: dict[str, list[dict]] = {}
    context = chromium.new_context(
        color_scheme="dark" if dark else "light", base_url=live_server.url
    )
    try:
        login = context.new_page()
        _check(login, "/accounts/login/", axe_violations, found)
        login.fill("input[name=username]", "olive")
        login.fill("input[name=password]", "wrong password")
        login.click("button[type=submit]")
        login.wait_for_selector(".errorlist, .msg.error, [role=alert]")
        failing = [v for v in axe_violations(login) if v["impact"] in AXE_FAILING]
        if failing:
            found["sign-in, wrong password"] = failing
    finally:
        context.close()
    viewer = new_page("victor", dark=dark)
    for url in (
        reverse("web:jobs"),
        reverse("web:job", args=["demo", "render"]),
        reverse("web:task", args=["demo", "render", "frame-001"]),
        reverse("web:pool", args=["demo", "local"]),
    ):
        _check(viewer, url, axe_violations, found)
    assert not found, "axe-core found critical or serious violations:\n" + describe_violations(
        found
    )
