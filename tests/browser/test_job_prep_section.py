"""The job page's "Preparation and release" section in a real browser: each node's runs,
their output links, a removed node's row kept, and nothing a command line holds executed."""

from __future__ import annotations

import pytest

from tasks.models import ComputeNode, Job
from tasks.operations import job_preparation as ops
from tests.browser.conftest import shot
from tests.browser.test_file_safety import CSP_LOG, violations_of
from tests.factories import JobFactory, TaskFactory

pytestmark = pytest.mark.browser


def test_the_job_page_lists_each_nodes_preparation_and_release(site, new_page):
    job = JobFactory(
        account=site["account"],
        job_id="prepped",
        pool_id="local",
        spec={
            "jobPreparationTask": {"commandLine": "/bin/sh -c 'echo <img src=x onerror=alert(1)>'"},
            "jobReleaseTask": {"commandLine": "/bin/true"},
        },
    )
    TaskFactory(job=job, task_id="t1")
    nodes = list(ComputeNode.objects.filter(pool__pool_id="local").order_by("node_id"))
    for node, code in zip(nodes, (0, 2, 0), strict=True):
        ops.finish_job_preparation(ops.start_job_preparation(job, node), exit_code=code)
    Job.objects.filter(pk=job.pk).update(state=Job.State.TERMINATING)
    [due, *_] = ops.releases_due(nodes[0])
    ops.start_job_release(due, nodes[0])
    ops.finish_job_release(due, exit_code=0)
    nodes[2].delete()

    page = new_page("victor")  # a viewer sees it too
    page.context.add_init_script(CSP_LOG)
    page.goto("/web/demo/jobs/prepped/")
    section = page.locator("#job-prep-release")
    section.scroll_into_view_if_needed()
    shot(page, "job-prep-release")
    rows = {r.get_attribute("data-node"): r.inner_text() for r in section.locator("tbody tr").all()}
    assert set(rows) == {"local-1", "local-2", "local-3"}
    assert "success" in rows["local-1"] and "completed" in rows["local-1"]
    assert "FailureExitCode" in rows["local-2"]
    assert (
        "removed from local" in rows["local-3"] and "due" not in rows["local-3"]
    )  # no release will run there
    assert "due" in rows["local-2"]
    href = section.locator("tr[data-node=local-1] a", has_text="release stdout").get_attribute(
        "href"
    )
    assert (
        href
        == "/web/demo/pools/local/nodes/local-1/files/workitems/prepped/job-1/jobrelease/stdout.txt"
    )
    assert "<img src=x onerror=alert(1)>" in section.inner_text()  # shown as text, never as markup
    assert section.locator("img").count() == 0
    assert violations_of(page) == []
