"""Disable a job with a disableTasks mode chosen in its dialog and enable it again, in a real
browser; the job schedule pages and terminating a schedule. Every action is audited."""

from __future__ import annotations

import pytest

from tasks.models import AuditRecord, Job, JobSchedule, Task
from tasks.operations.job_schedules import add_job_schedule
from tests.browser.conftest import shot
from tests.browser.test_file_safety import CSP_LOG, violations_of

pytestmark = pytest.mark.browser


def test_operator_disables_a_job_with_the_terminate_mode_then_enables_it(site, new_page):
    running = Task.objects.filter(job__job_id="render", state="running").count()
    assert running > 0
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/demo/jobs/render/")
    page.click("[data-job-action=disable] a")
    page.wait_for_selector("#job-dialog #confirm-job-disable")
    shot(page, "job-disable-dialog")
    assert page.is_checked("#job-dialog input[value=requeue]")  # Batch's default first
    page.check("#job-dialog input[value=terminate]")
    page.click("#job-dialog button[type=submit]")
    page.wait_for_selector("[data-job-action=enable]")
    assert "disabled (terminate)" in page.inner_text(".messages")
    assert Job.objects.get(job_id="render").state == "disabled"
    assert Task.objects.filter(job__job_id="render", state="running").count() == 0
    assert (
        Task.objects.filter(job__job_id="render", failure_info__code="TaskEnded").count() >= running
    )

    page.click("[data-job-action=enable] button")
    page.wait_for_selector("[data-job-action=disable]")
    assert Job.objects.get(job_id="render").state == "active"
    assert list(AuditRecord.objects.order_by("created").values_list("action", "scope")) == [
        ("job-disable", {"job": "render", "option": "terminate"}),
        ("job-enable", {"job": "render"}),
    ]
    assert violations_of(page) == []


def test_the_disable_dialog_cancels_and_a_viewer_gets_only_disabled_buttons_with_the_reason(
    site, new_page
):
    page = new_page("olive")
    page.goto("/web/demo/jobs/render/")
    page.click("[data-job-action=disable] a")
    page.click("#job-dialog [data-close-dialog]")
    page.wait_for_function("() => !document.querySelector('#job-dialog').textContent.trim()")
    assert Job.objects.get(job_id="render").state == "active"
    viewer = new_page("victor")
    viewer.goto("/web/demo/jobs/render/")
    actions = viewer.locator("[data-job-action]")
    assert actions.count() > 0
    # Every job action is there, disabled, with why (the viewer role); none can be opened.
    assert viewer.locator("[data-job-action] a, [data-job-action] form").count() == 0
    assert viewer.locator("[data-job-action] button:disabled").count() == actions.count()
    assert all(
        "viewer" in text.lower()
        for text in viewer.locator("[data-job-action] .reason").all_inner_texts()
    )


def test_operator_reads_a_schedule_and_terminates_it(site, new_page):
    add_job_schedule(
        site["account"],
        spec={
            "id": "hourly",
            "schedule": {},
            "jobSpecification": {"poolInfo": {"poolId": "local"}},
        },
    )
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/jobschedules/")
    page.click("[data-schedule=hourly] a")
    page.wait_for_selector("[data-job='hourly:job-1']")
    shot(page, "job-schedule")
    page.click("[data-action=terminate] a")
    page.wait_for_selector("#schedule-dialog #confirm-schedule-terminate")
    page.click("#schedule-dialog button[type=submit]")
    page.wait_for_selector("h1 .state-completed")
    assert JobSchedule.objects.get(schedule_id="hourly").state == "completed"
    assert Job.objects.get(job_id="hourly:job-1").terminate_reason == "TerminateJobSchedule"
    assert violations_of(page) == []
