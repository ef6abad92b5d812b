"""The dashboard in a real browser, as an operator and as a viewer: every item of the
issue's "Done when", with a screenshot of each page in screenshots/."""

from __future__ import annotations

import re

import psutil
import pytest

from tasks.models import Attempt, BulkOperation, Task
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task
from tests.agents import wait_for
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def job_path(site, suffix: str = "") -> str:
    return f"/web/demo/jobs/render/{suffix}"


def row_ids(page) -> list[str]:
    return page.locator("#task-table tbody tr[data-task]").evaluate_all(
        "rows => rows.map(r => r.dataset.task)"
    )


def test_operator_filters_and_sorts_a_jobs_tasks(site, new_page):
    page = new_page("olive")
    shot(page, "01-jobs")
    assert page.locator("#jobs-table tr[data-job=render] [data-count=failed]").inner_text() == "9"
    page.click("text=render")
    shot(page, "02-job-tasks")
    page.select_option("select[name=result]", "failure")
    page.fill("input[name=exit_code]", "137")
    page.click("#task-filter button[type=submit]")
    page.wait_for_url(re.compile(r"result=failure"))
    assert set(row_ids(page)) == {f"frame-{i:03d}" for i in range(1, 24, 6)}
    page.click("#task-table th >> text=Run time")
    page.wait_for_url(re.compile(r"sort=runtime"))
    page.click("#task-table th >> text=Run time")  # again: longest first
    page.wait_for_url(re.compile(r"sort=-runtime"))
    assert row_ids(page) == ["frame-019", "frame-013", "frame-007", "frame-001"]
    assert "exit_code=137" in page.url  # the filter lives in the URL: reload keeps it
    page.reload()
    assert row_ids(page) == ["frame-019", "frame-013", "frame-007", "frame-001"]
    shot(page, "03-job-tasks-filtered-sorted")


def test_operator_sees_primary_beside_each_subtask(site, new_page):
    page = new_page("olive")
    page.goto(job_path(site, "tasks/mpi-solve/"))
    instances = page.locator("#task-instances")
    assert instances.locator("tr[data-instance='primary (0)']").is_visible()
    bad = instances.locator("tr.bad[data-instance='subtask 2']")
    assert "139" in bad.inner_text() and "local-3" in bad.inner_text()
    shot(page, "04-task-multi-instance")


def test_operator_watches_a_real_task_run_then_terminates_it(site, agents, new_page):
    """A real `runnode` agent runs the task: the page follows its state and output without
    reloading, and Terminate reaches the process."""
    pool = add_pool(site["account"], spec={"id": "real", "vmSize": "local"})
    job = add_job(site["account"], spec={"id": "stream", "poolInfo": {"poolId": "real"}})
    task = add_task(
        job,
        spec={
            "id": "frames",
            "commandLine": "/bin/sh -c 'echo starting; sleep 2; "
            "echo frame 1 of 3 rendered; echo $$ > pid; exec sleep 60'",
        },
    )
    page = new_page("olive")
    page.goto("/web/demo/jobs/stream/tasks/frames/")
    page.evaluate("window.__notReloaded = true")
    assert page.inner_text("#task-state") == "active"
    agents.start(pool, "real-1", slots=1)
    page.wait_for_function(
        "() => document.querySelector('#task-state').textContent === 'running'", timeout=15_000
    )
    page.wait_for_function(
        "() => document.querySelector('#output-text').textContent.includes('frame 1 of 3')",
        timeout=15_000,
    )
    shot(page, "05-task-running-output")
    pid = int(
        wait_for(
            lambda: _read(f"{Task.objects.get(pk=task.pk).task_root_directory}/wd/pid"),
            message="the task's pid",
        )
    )
    page.click("#task-actions [data-action=terminate] a")
    page.wait_for_selector("#task-dialog .confirm-box")
    shot(page, "06-task-terminate-confirm")
    page.click("#task-dialog button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#task-state').textContent === 'completed'"
    )
    assert page.inner_text("#task-flash") == "Task frames: terminate done."
    assert page.locator("#task-dialog").inner_html().strip() == ""
    assert page.evaluate("window.__notReloaded") is True
    assert "TaskEnded" in page.inner_text("#task-failure")
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        timeout=5,
        message="the process to be killed",
    )
    wait_for(
        lambda: Attempt.objects.get(task=task).outcome == "terminated", message="the agent's report"
    )
    page.reload()
    shot(page, "07-task-terminated")


def _read(path: str) -> str:
    try:
        return open(path).read().strip()
    except OSError:
        return ""


def test_operator_reactivates_a_failed_task_and_sees_why_a_succeeded_one_cannot(site, new_page):
    page = new_page("olive")
    page.goto(job_path(site, "tasks/frame-000/"))
    action = page.locator("#task-actions [data-action=reactivate]")
    assert action.locator("button").is_disabled()
    assert (
        action.locator(".reason").inner_text()
        == "The specified task completed successfully and cannot be reactivated."
    )
    shot(page, "08-task-succeeded-reactivate-disabled")
    page.goto(job_path(site, "tasks/frame-002/"))
    page.click("#task-actions [data-action=reactivate] button")
    page.wait_for_function("() => document.querySelector('#task-state').textContent === 'active'")
    assert Task.objects.get(task_id="frame-002").state == "active"
    shot(page, "09-task-reactivated")


def test_operator_bulk_reactivates_a_filter_after_its_preview(site, new_page):
    page = new_page("olive")
    page.goto(job_path(site, "triage/"))
    shot(page, "10-job-triage")
    page.click("[data-group=exit_code] tr[data-value='137'] >> text=Reactivate")
    assert page.inner_text("#bulk-count") == "4"
    shot(page, "11-bulk-preview")
    assert BulkOperation.objects.count() == 0
    page.click("text=Yes, reactivate 4 tasks")
    page.wait_for_url(re.compile(r"/web/bulk/\d+/"))
    page.wait_for_function("() => document.querySelector('#bulk-state').textContent === 'done'")
    assert page.inner_text("#bulk-succeeded") == "4"
    shot(page, "12-bulk-done")
    assert set(Task.objects.filter(exit_code=137).values_list("state", flat=True)) == set()
    assert (
        Task.objects.filter(
            task_id__in=["frame-001", "frame-007", "frame-013", "frame-019"], state="active"
        ).count()
        == 4
    )
    page.goto("/web/audit/")
    assert "bulk-reactivate" in page.inner_text("#audit-table")
    shot(page, "13-audit")


def test_viewer_finds_no_enabled_action_and_a_forged_post_is_refused(site, new_page):
    page = new_page("victor")
    page.goto(job_path(site, "tasks/frame-002/"))
    buttons = page.locator("#task-actions button")
    assert buttons.count() == 4 and all(buttons.nth(i).is_disabled() for i in range(4))
    assert page.locator("#task-actions a, #task-actions form").count() == 0
    shot(page, "14-viewer-task")
    page.goto(job_path(site))
    enabled = page.locator(".bulkbar button:not([disabled]), .bulkbar a.btn")
    assert enabled.count() == 0
    shot(page, "15-viewer-job")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        page.url + "tasks/frame-002/reactivate/", headers={"X-CSRFToken": token}
    )
    assert forged.status == 403
    assert Task.objects.get(task_id="frame-002").state == "completed"


def test_every_other_page_renders_for_the_record(site, new_page):
    page = new_page("olive")
    for path, name in [
        (job_path(site, "timeline/"), "16-job-timeline"),
        ("/web/demo/pools/", "17-pools"),
        ("/web/demo/pools/local/nodes/local-3/", "18-node"),
        (job_path(site, "add/"), "19-task-add"),
        (job_path(site, "tasks/frame-001/"), "20-task-failed"),
        (job_path(site, "tasks/frame-004/delete/"), "27-task-delete-confirm-page"),
        (job_path(site, "tasks/live-1/output/?file=stderr.txt"), "28-task-output-page"),
        (
            job_path(site, "bulk/?action=terminate&task=frame-004&task=frame-010"),
            "29-bulk-preview-selection",
        ),
        ("/web/demo/jobs/no-such-job/", "30-not-found"),
    ]:
        page.goto(path)
        shot(page, name)
    page.goto(job_path(site, "tasks/frame-004/"))
    page.click("#task-actions [data-action=update] a")
    page.wait_for_selector("#update-form")
    shot(page, "21-task-update-dialog")
    page.fill("#update-form input[name=max_task_retry_count]", "5")
    page.click("#update-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#task-constraints').textContent.includes('5')"
    )
    page.goto(job_path(site, "add/"))
    page.fill("input[name=task_id]", "mpi-new")
    page.fill("textarea[name=command_line]", "/bin/mpirun solve")
    page.fill("input[name=number_of_instances]", "2")
    page.click("#add-form button[type=submit]")
    page.wait_for_url(re.compile(r"/tasks/mpi-new/"))
    shot(page, "22-task-added")
    dark = new_page("olive", dark=True)
    dark.goto(job_path(site))
    shot(dark, "23-job-dark")
    dark.goto(job_path(site, "tasks/mpi-solve/"))
    shot(dark, "24-task-dark")
    phone = new_page("olive", phone=True)
    phone.goto(job_path(site))
    shot(phone, "25-job-phone")
    phone.context.clear_cookies()
    phone.goto("/accounts/login/")
    shot(phone, "26-login-phone")
