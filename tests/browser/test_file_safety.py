"""In a real browser: a task's HTML and SVG with a `<script>` never run on the dashboard's
origin, opened by the task's own operator or by a superuser, however they open them; and no
dashboard or admin page breaks the site's Content-Security-Policy (no inline script or
style, no eval), with htmx still polling and posting."""

from __future__ import annotations

import base64
import re

import pytest

from tasks.models import AccountMembership, Task
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task
from tests.agents import wait_for
from tests.browser.conftest import shot, user
from tests.factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser

# What the task writes: reads the admin's account list (every account's keys) with the
# viewer's session and sends it away; marks the origin's storage; pops a dialog.
PAYLOAD = (
    "localStorage.setItem('xss', 'ran'); alert('xss');"
    "fetch('/admin/tasks/account/').then(r => r.text())"
    ".then(t => fetch('/xss-probe?leak=' + encodeURIComponent(t.slice(0, 300))));"
    "new Image().src = '/xss-probe?img=1';"
)
HTML = f"<!doctype html><html><body><h1>report</h1><script>{PAYLOAD}</script></body></html>"
SVG = (
    f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>{PAYLOAD}</script>'
    '<rect width="10" height="10"/></svg>'
)
FILES = {"wd/page.html": HTML, "wd/image.svg": SVG}


def _writes(content: str, name: str) -> str:
    return f"echo {base64.b64encode(content.encode()).decode()} | base64 -d > {name}"


@pytest.fixture
def hostile_task(site, agents):
    """Account `evil` (operator `eve`) whose task wrote an HTML page and an SVG with a
    script, run by a real agent; a superuser `root` who sees every account."""
    evil = AccountFactory(name="evil")
    MembershipFactory(account=evil, user=user("eve"), role=AccountMembership.Role.OPERATOR)
    UserFactory(username="root", is_staff=True, is_superuser=True)
    pool = add_pool(evil, spec={"id": "evilpool", "vmSize": "local"})
    job = add_job(evil, spec={"id": "reports", "poolInfo": {"poolId": "evilpool"}})
    command = f"/bin/sh -c '{_writes(HTML, 'page.html')}; {_writes(SVG, 'image.svg')}'"
    task = add_task(job, spec={"id": "report", "commandLine": command})
    agents.start(pool, "evil-1", slots=1)
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == Task.State.COMPLETED,
        timeout=30,
        message="the hostile task to complete",
    )
    assert Task.objects.get(pk=task.pk).exit_code == 0
    return "/web/evil/jobs/reports/tasks/report/"


def watch(page) -> dict:
    """Everything a script that ran would leave: requests to the probe and dialogs."""
    seen = {"probe": [], "dialogs": []}
    page.context.on("request", lambda r: "xss-probe" in r.url and seen["probe"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    return seen


@pytest.mark.parametrize("who", ["eve", "root"])
def test_a_tasks_script_never_runs_for_its_operator_or_a_superuser(hostile_task, new_page, who):
    page = new_page(who)
    seen = watch(page)
    for name in FILES:
        page.goto(hostile_task)
        files = page.locator("#task-files")
        # The name opens the file as text on the output page.
        files.locator(f"a:text-is('{name}')").click()
        page.wait_for_load_state("load")
        page.wait_for_timeout(500)  # give a script that ran the time to be seen
        assert seen == {"probe": [], "dialogs": []}, f"{name} ran when opened from the file list"
        page.wait_for_url(re.compile(r"/output/\?file="))
        assert "<script>" in page.inner_text("#output-text")
        shot(page, f"31-file-preview-{who}-{name.rsplit('.', 1)[-1]}")
        # Download: an attachment, never a page.
        page.goto(hostile_task)
        with page.expect_download() as download:
            files.locator("tr", has_text=name).locator("a.btn", has_text="Download").click()
        assert download.value.suggested_filename == name.rsplit("/", 1)[-1]
        # The file's own URL typed or followed from elsewhere: a download too.
        url = page.locator("#task-files tr", has_text=name).locator("a.btn").get_attribute("href")
        with page.expect_download():
            page.evaluate("url => { window.location.href = url }", url)
    page.goto(hostile_task)
    page.wait_for_timeout(500)  # give a fetch that had started the time to be seen
    assert seen == {"probe": [], "dialogs": []}
    assert page.evaluate("localStorage.getItem('xss')") is None
    assert "page.html" in page.inner_text("#task-files")


def violations_of(page) -> list[str]:
    return page.evaluate("window.__csp || []")


CSP_LOG = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation', "
    "e => window.__csp.push(location.pathname + ': ' + e.violatedDirective + ' ' + e.blockedURI));"
)


def test_no_dashboard_or_admin_page_breaks_the_content_security_policy(site, new_page):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    page = new_page("root")
    page.context.add_init_script(CSP_LOG)
    console = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and ("Content Security Policy" in m.text or "htmx" in m.text)
            and console.append(f"{page.url}: {m.text}")
        ),
    )
    found: list[str] = []
    job = "/web/demo/jobs/render/"
    paths = [
        "/web/",
        job,
        job + "?result=failure",
        job + "triage/",
        job + "timeline/",
        job + "add/",
        job + "tasks/frame-000/",
        job + "tasks/frame-001/",
        job + "tasks/mpi-solve/",
        job + "tasks/live-1/",
        job + "tasks/live-1/output/?file=stderr.txt",
        job + "tasks/frame-004/delete/",
        job + "bulk/?action=terminate&task=frame-004&task=frame-010",
        "/web/demo/pools/",
        "/web/demo/pools/local/nodes/local-3/",
        "/web/audit/",
        "/web/demo/jobs/no-such-job/",
        "/admin/",
        "/admin/tasks/account/",
        f"/admin/tasks/account/{site['account'].pk}/change/",
        "/admin/tasks/task/",
        f"/admin/tasks/task/{site['tasks'][0].pk}/change/",
        "/admin/tasks/job/",
        "/admin/tasks/pool/",
        "/admin/tasks/computenode/",
        "/admin/tasks/auditrecord/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        "/admin/auth/group/add/",
    ]
    for path in paths:
        response = page.goto(path)
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), path
        page.wait_for_load_state("load")
        found += violations_of(page)
        name = re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()) or "root"
        shot(page, f"40-csp-{name[:60]}")
    # htmx at work under the policy: a live page polls, a dialog opens, a form posts with
    # the CSRF token from the template (the cookie is HttpOnly).
    page.goto(job + "tasks/live-1/")
    with page.expect_response(
        lambda r: r.url.endswith("/tasks/live-1/") and r.request.headers.get("hx-request")
    ):
        pass
    found += violations_of(page)
    page.goto(job + "tasks/frame-004/")
    page.click("#task-actions [data-action=update] a")
    page.wait_for_selector("#update-form")
    page.fill("#update-form input[name=max_task_retry_count]", "7")
    page.click("#update-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#task-constraints').textContent.includes('7')"
    )
    found += violations_of(page)
    page.context.clear_cookies()
    for path in ("/accounts/login/", "/admin/login/"):
        page.goto(path)
        found += violations_of(page)
    assert found == [] and console == []
    # The capture works and the policy is enforced: an inline style a script adds is refused.
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\\'color: red\\'>x</div>')"
    )
    until(page, lambda: violations_of(page), seconds=5, message="the canary's violation")
    assert [v.split(": ", 1)[1] for v in violations_of(page)] == ["style-src-attr inline"]


def until(page, predicate, *, seconds: float, message: str) -> None:
    """Wait while Playwright dispatches events (time.sleep would hold them back)."""
    for _ in range(int(seconds * 5)):
        if predicate():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"timed out after {seconds}s waiting for {message}")


def test_a_refresh_on_its_way_when_a_task_is_ticked_does_not_take_the_tick(site, new_page):
    """The job page's refresh already sent when the reader ticks a task is answered with the
    page as it was before the tick: it must not be swapped in. (It was, and the tick was
    gone; seen as the test below failing in a whole PostgreSQL run.)"""
    page = new_page("olive")
    job = "/web/demo/jobs/render/"
    page.goto(job)
    held = []

    def hold(route):
        if route.request.headers.get("hx-request") and not held:
            held.append(route)  # answered below, once the task is ticked
        else:
            route.continue_()

    page.route(f"**{job}", hold)
    until(page, lambda: held, seconds=15, message="the job page's refresh")
    box = "#bulk-form input[name=task] >> nth=0"
    page.check(box)
    held[0].continue_()
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    page.wait_for_timeout(300)
    assert page.is_checked(box)
    assert page.inner_text("[data-selected-count]") == "1"


def test_a_live_job_page_stops_polling_while_a_task_is_ticked_and_while_hidden(site, new_page):
    page = new_page("olive")
    job = "/web/demo/jobs/render/"
    polls = []
    page.on(
        "request",
        lambda r: r.headers.get("hx-request") and "/jobs/render/" in r.url and polls.append(r.url),
    )
    page.goto(job)
    until(page, lambda: polls, seconds=15, message="the job page to poll")
    page.check("#bulk-form input[name=task] >> nth=0")
    page.wait_for_timeout(300)
    polls.clear()
    page.wait_for_timeout(5_000)  # 2.5 poll intervals
    assert polls == []
    page.uncheck("#bulk-form input[name=task] >> nth=0")
    until(page, lambda: polls, seconds=15, message="polling to resume")
    page.evaluate("Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'})")
    page.wait_for_timeout(300)
    polls.clear()
    page.wait_for_timeout(5_000)
    assert polls == []
