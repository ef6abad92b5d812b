"""In a real browser: a filter with an error is shown at its field and nothing is listed,
exported or acted on; the admin's change forms say what goes through the rules, and an
account key is regenerated (asked first, shown once), never displayed otherwise."""

from __future__ import annotations

import re

import pytest

from tasks.models import Account, AuditRecord, BulkOperation, ComputeNode, Task
from tests.browser.conftest import shot
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

BAD_SINCE = "since=0001-01-01T00:00:00%2B14:00"  # a 500 before; UTC cannot hold it
# Every page here must keep the site's Content-Security-Policy: each violation is recorded.
CSP_LOG = (
    "window.__csp = []; document.addEventListener('securitypolicyviolation', "
    "e => window.__csp.push(location.pathname + ': ' + e.violatedDirective + ' ' + e.blockedURI));"
)


def watch_csp(page):
    page.context.add_init_script(CSP_LOG)


def violations(page) -> list[str]:
    return page.evaluate("window.__csp || []")


def row_ids(page) -> list[str]:
    return page.locator("#task-table tbody tr[data-task]").evaluate_all(
        "rows => rows.map(r => r.dataset.task)"
    )


@pytest.mark.parametrize("phone", [False, True])
def test_a_filter_with_an_error_shows_it_and_widens_nothing(site, new_page, phone):
    page = new_page("olive", phone=phone)
    watch_csp(page)
    page.goto(f"/web/demo/jobs/render/?node=local-3&{BAD_SINCE}")
    assert page.locator("#filter-errors").is_visible()
    assert "Out of range" in page.inner_text("#filter-errors")
    assert (
        page.locator("input[name=since][aria-invalid=true]").input_value()
        == "0001-01-01T00:00:00+14:00"
    )
    assert row_ids(
        page
    ) == [] and "Nothing is listed while the filter has an error" in page.inner_text("#task-table")
    assert page.locator("button:has-text('Export CSV')").is_disabled()
    assert page.locator("button:has-text('Delete all…')").is_disabled()
    shot(page, "31-filter-error" + ("-phone" if phone else ""))
    found = violations(page)
    page.goto(f"/web/demo/jobs/render/export.csv?{BAD_SINCE}")
    assert "Export CSV: the filter has an error" in page.inner_text("h1")
    found += violations(page)
    page.goto(f"/web/demo/jobs/render/bulk/?action=delete&node=local-3&{BAD_SINCE}")
    assert "The filter has an error" in page.inner_text("#bulk-preview")
    assert page.locator("#bulk-preview button[type=submit]").count() == 0
    shot(page, "32-bulk-preview-filter-error" + ("-phone" if phone else ""))
    found += violations(page)
    page.click("text=Correct the filter")
    page.wait_for_url(re.compile(r"/web/demo/jobs/render/\?node=local-3&since="))
    page.fill("input[name=since]", "")
    page.click("#task-filter button[type=submit]")
    page.wait_for_url(re.compile(r"node=local-3"))
    assert row_ids(page) and page.locator("#filter-errors").count() == 0
    assert BulkOperation.objects.count() == 0 and Task.objects.filter(job=site["job"]).count() == 26
    assert found + violations(page) == []


@pytest.fixture
def root(site):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("phone", [False, True])
def test_the_admin_says_what_goes_through_the_rules(site, root, new_page, phone):
    page = new_page("root", phone=phone)
    watch_csp(page)
    task = Task.objects.get(task_id="frame-004")
    page.goto(f"/admin/tasks/task/{task.pk}/change/")
    assert "saved through Update Task" in page.inner_text("#rules-note")
    assert page.locator("input[name=max_task_retry_count]").is_visible()
    assert page.locator("input[name=task_id], input[name=required_slots]").count() == 0
    shot(page, "33-admin-task" + ("-phone" if phone else ""))
    found = violations(page)
    page.goto(f"/admin/tasks/job/{site['job'].pk}/change/")
    shot(page, "34-admin-job" + ("-phone" if phone else ""))
    page.goto(
        f"/admin/tasks/computenode/{ComputeNode.objects.first().pk}/delete/"
    )  # refused, with the reason
    assert "A node cannot be deleted here" in page.inner_text(".messagelist")
    assert found + violations(page) == []


def test_an_admin_regenerates_a_key_and_sees_it_once(site, root, new_page):
    account = Account.objects.get(name="demo")
    old = account.primary_key
    page = new_page("root")
    watch_csp(page)
    page.goto(f"/admin/tasks/account/{account.pk}/change/")
    assert old not in page.content() and "SHA-256 fingerprint" in page.inner_text("#content-main")
    shot(page, "35-admin-account")
    found = violations(page)
    page.click("input[value='Regenerate primary key']")
    page.wait_for_selector("text=Yes, regenerate the primary key")
    shot(page, "36-admin-regenerate-confirm")
    found += violations(page)
    assert Account.objects.get(pk=account.pk).primary_key == old
    page.click("input[value='Yes, regenerate the primary key']")
    new = page.inner_text("#new-keys code.new-key")
    assert new == Account.objects.get(pk=account.pk).primary_key != old
    shot(page, "37-admin-new-key")
    found += violations(page)
    page.goto(f"/admin/tasks/account/{account.pk}/change/")
    assert new not in page.content() and found + violations(page) == []
    assert AuditRecord.objects.get(action="regenerate-key").scope == {"key": "primary"}
    phone = new_page("root", phone=True)
    phone.goto(f"/admin/tasks/account/{account.pk}/change/")
    shot(phone, "38-admin-account-phone")
