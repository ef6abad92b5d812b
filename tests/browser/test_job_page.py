"""The job page in a real browser: the analytics of a 50,000-task job, the node timeline's
zoom and its keyboard-reachable bars, the job's update with its preview; screenshots at
desktop (1440) and phone (390) size, light and dark."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Attempt, Job, Task
from tasks.operations.counts import recount_job
from tests.browser.conftest import shot
from tests.browser.test_file_safety import CSP_LOG, violations_of
from tests.factories import JobFactory

pytestmark = pytest.mark.browser

BIG = 50_000
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def fifty_thousand(account) -> Job:
    """A job of 50,000 tasks added over the last 2 hours: 80% completed (one in 10 failed,
    one in 97 an hour long), the rest waiting or running; an attempt for each that ran."""
    job = JobFactory(account=account, job_id="big", pool_id="local")
    t0 = timezone.now() - timedelta(hours=2)
    rows = []
    for i in range(BIG):
        created = t0 + timedelta(milliseconds=i * 120)
        state = "completed" if i % 5 else ("running" if i % 10 == 0 else "active")
        run = 3600 if i % 97 == 3 else 20 + i % 40
        rows.append(
            Task(
                job=job,
                task_id=f"t{i:05d}",
                id_key=f"t{i:05d}",
                command_line="x",
                retention_time=timedelta(days=7),
                etag="0x1",
                state=state,
                state_transition_time=created,
                creation_time=created,
                last_modified=created,
                start_time=created if state != "active" else None,
                end_time=created + timedelta(seconds=run) if state == "completed" else None,
                node_name=f"local-{i % 3 + 1}" if state != "active" else "",
                result=("failure" if i % 10 == 1 else "success") if state == "completed" else "",
                exit_code=(1 if i % 10 == 1 else 0) if state == "completed" else None,
            )
        )
    Task.objects.bulk_create(rows, batch_size=2000)
    ran = Task.objects.filter(job=job, start_time__isnull=False).values_list(
        "pk", "start_time", "end_time", "node_name", "result"
    )
    Attempt.objects.bulk_create(
        [
            Attempt(
                task_id=pk,
                job=job,
                node_name=node,
                claimed=start,
                start_time=start,
                end_time=end,
                outcome="running"
                if end is None
                else ("succeeded" if result == "success" else "failed"),
            )
            for pk, start, end, node, result in ran
        ],
        batch_size=2000,
    )
    recount_job(job)
    return job


def test_the_analytics_of_a_50000_task_job_render(site, new_page):
    fifty_thousand(site["account"])
    for dark in (False, True):
        for size, viewport in SIZES.items():
            page = new_page("olive", dark=dark, phone=size == "phone")
            page.context.add_init_script(CSP_LOG)
            page.set_viewport_size(viewport)
            page.goto("/web/demo/jobs/big/analytics/")
            basis = page.inner_text("#analytics-basis")
            assert "a sample of" in basis and "of 50,000 tasks" in basis
            assert page.locator("#completions-chart .col").count() == 48
            assert page.locator("#run-time-chart rect.failed").count() >= 1  # the very slow ones
            assert page.locator("#outliers a").count() >= 1
            assert "tasks/min" in page.inner_text("#recent-rate")
            assert page.inner_text("#eta").strip()[0].isdigit()  # a duration, not a reason
            # A chart scrolls inside its own box on a phone: the page itself does not.
            assert page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
            )
            shot(page, f"job-analytics-{size}-{'dark' if dark else 'light'}")
            assert violations_of(page) == []
            page.click("#outliers a >> nth=0")
            page.wait_for_url("**/tasks/t*/")
            page.context.close()


def test_the_timeline_zooms_and_its_bars_are_reachable_by_keyboard(site, new_page):
    page = new_page("olive")
    page.context.add_init_script(CSP_LOG)
    page.set_viewport_size(SIZES["desktop"])
    page.goto("/web/demo/jobs/render/timeline/")
    bars = page.locator("#node-timeline a")
    total = bars.count()
    assert total == Attempt.objects.filter(job__job_id="render").count()
    assert "All " in page.inner_text("#timeline-what")
    # Tab from the link just before the chart reaches the first bar, named for a screen
    # reader (the scroll box is no tab stop of its own: the chart is one, its bars'.)
    page.focus("#skip-chart")
    page.keyboard.press("Tab")
    name = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert (
        name.startswith("Task ")
        and ", attempt " in name
        and " on local-" in name
        and " from " in name
    )
    shot(page, "job-timeline-desktop-light")
    page.click("#zoom-in")
    page.wait_for_url("**/timeline/?from=*")
    assert "in this range" in page.inner_text("#timeline-what")
    assert page.locator("#node-timeline a").count() < total
    page.click("#zoom-latest")
    page.wait_for_function("() => !location.search")
    href = bars.first.get_attribute("href")
    bars.first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/**")
    anchor = href.split("#")[1]
    assert page.locator(f"#{anchor}").count() == 1
    assert violations_of(page) == []
    for dark in (False, True):
        for size, viewport in SIZES.items():
            p = new_page("olive", dark=dark, phone=size == "phone")
            p.set_viewport_size(viewport)
            p.goto("/web/demo/jobs/render/timeline/")
            assert p.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
            shot(p, f"job-timeline-{size}-{'dark' if dark else 'light'}")
            p.goto("/web/demo/jobs/render/")
            shot(p, f"job-page-{size}-{'dark' if dark else 'light'}")


def test_an_operator_updates_the_job_after_a_preview(site, new_page):
    page = new_page("olive")
    page.goto("/web/demo/jobs/render/")
    page.click("[data-job-action=update] a")
    page.fill("input[name=priority]", "700")
    page.click("#job-update-form button[type=submit]")
    page.wait_for_selector("#job-update-preview")
    assert "700" in page.inner_text("#job-update-preview")
    assert Job.objects.get(job_id="render").priority == 0
    page.click("#job-update-form button[type=submit]")
    page.wait_for_url("**/jobs/render/")
    assert "updated: priority 700" in page.inner_text(".messages")
    assert Job.objects.get(job_id="render").priority == 700
