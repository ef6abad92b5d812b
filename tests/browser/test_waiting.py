"""The task page says why a task is not running, as the claim decides it, and follows the
reason live; a wall-clock update ends the running task of a real agent."""

from __future__ import annotations

import re

import pytest

from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task
from tests.browser.conftest import shot
from tests.execution import claim, finish, make_node

pytestmark = pytest.mark.browser


def reason(page) -> str:
    return page.get_attribute("#task-waiting", "data-waiting")


def wait_reason(page, code: str) -> None:
    page.wait_for_function(
        f"() => (document.querySelector('#task-waiting') || {{}}).dataset?.waiting === '{code}'",
        timeout=15_000,
    )


def test_the_waiting_reasons_of_a_failed_dependency_a_pool_without_nodes_and_a_two_instance_task(
    site, new_page
):
    account = site["account"]
    work = add_pool(account, spec={"id": "work", "vmSize": "local"})
    first, second = make_node(work, "w1", slots=1), make_node(work, "w2", slots=1)
    etl = add_job(
        account, spec={"id": "etl", "poolInfo": {"poolId": "work"}, "usesTaskDependencies": True}
    )
    add_task(etl, spec={"id": "transform-bad", "commandLine": "exit 5"})
    [bad] = claim(first)
    finish(bad, 5)
    add_task(
        etl,
        spec={
            "id": "load",
            "commandLine": "/bin/true",
            "dependsOn": {"taskIds": ["transform-bad"]},
        },
    )
    add_task(etl, spec={"id": "busy", "commandLine": "/bin/true"})
    [busy] = claim(second)
    add_task(
        etl,
        spec={
            "id": "mpi",
            "commandLine": "/bin/true",
            "multiInstanceSettings": {
                "numberOfInstances": 2,
                "coordinationCommandLine": "/bin/true",
            },
        },
    )
    gpu = add_pool(account, spec={"id": "gpu-pool", "vmSize": "local"})
    train = add_job(account, spec={"id": "train", "poolInfo": {"poolId": "gpu-pool"}})
    add_task(train, spec={"id": "epoch-1", "commandLine": "/bin/true"})

    page = new_page("olive")
    page.goto("/web/demo/jobs/etl/tasks/load/")
    assert reason(page) == "dependency_failed"
    text = page.inner_text("#task-waiting")
    assert "Will not run" in text and "transform-bad failed with exit code 5" in text
    assert "waits for a free slot" not in page.content()
    row = page.locator("#dependency-list tr[data-dependency=transform-bad]")
    assert "failed: blocks" in row.inner_text()
    shot(page, "waiting-01-dependency-failed")
    row.locator("a").click()
    page.wait_for_url("**/tasks/transform-bad/")

    page.goto("/web/demo/jobs/etl/tasks/mpi/")
    assert reason(page) == "needs_nodes_at_once"
    assert "Needs 2 nodes at once, 1 free" in page.inner_text("#task-waiting")
    shot(page, "waiting-02-two-instances")
    finish(busy, 0)  # the busy node frees up: the live page says the task can now start
    wait_reason(page, "eligible")

    page.goto("/web/demo/jobs/train/tasks/epoch-1/")
    assert reason(page) == "no_nodes"
    assert "Pool gpu-pool has no nodes" in page.inner_text("#task-waiting")
    shot(page, "waiting-03-no-nodes")
    make_node(gpu, "g1")
    wait_reason(page, "eligible")

    page.goto("/web/demo/jobs/etl/")
    page.check("#filter-blocked")
    page.click("#task-filter button[type=submit]")
    page.wait_for_url(re.compile(r"blocked=1"))
    rows = page.locator("#task-table tbody tr[data-task]").evaluate_all(
        "rows => rows.map(r => r.dataset.task)"
    )
    assert rows == ["load"]
    shot(page, "waiting-04-blocked-filter")
    for dark in (False, True):
        small = new_page("olive", dark=dark, phone=True)
        small.goto("/web/demo/jobs/etl/tasks/load/")
        assert reason(small) == "dependency_failed"
        shot(small, f"waiting-07-phone-{'dark' if dark else 'light'}")
    dark = new_page("olive", dark=True)
    dark.goto("/web/demo/jobs/etl/tasks/load/")
    shot(dark, "waiting-08-desktop-dark")


def test_a_wall_clock_update_ends_the_running_task(site, agents, new_page):
    pool = add_pool(site["account"], spec={"id": "real", "vmSize": "local"})
    job = add_job(site["account"], spec={"id": "long", "poolInfo": {"poolId": "real"}})
    add_task(job, spec={"id": "sleeper", "commandLine": "sleep 300"})
    agents.start(pool, "real-1", slots=1)
    page = new_page("olive")
    page.goto("/web/demo/jobs/long/tasks/sleeper/")
    page.wait_for_function(
        "() => document.querySelector('#task-state').textContent === 'running'", timeout=15_000
    )
    page.click("#task-actions [data-action=update] a")
    page.wait_for_selector("#task-dialog #update-form")
    assert "Applies to a running attempt too" in page.inner_text("#update-form")
    page.fill("#update-form input[name=max_wall_clock_time]", "00:00:02")
    shot(page, "waiting-05-wall-clock-form")
    page.click("#update-form button[type=submit]")
    page.wait_for_selector("#task-flash")
    assert "The running attempt now has max wall-clock 2.0 s, from its start" in page.inner_text(
        "#task-flash"
    )
    page.wait_for_function(
        "() => document.querySelector('#task-state').textContent === 'completed'", timeout=20_000
    )
    assert "TaskEnded" in page.inner_text("#task-failure")
    assert "maximum wall clock time" in page.inner_text("#task-failure")
    shot(page, "waiting-06-wall-clock-ended")
