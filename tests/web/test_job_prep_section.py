"""The job page's "Preparation and release" section: each node's preparation and release
with links to their output through the node file pages."""

import re

import pytest

from tasks.operations import job_preparation as ops
from tasks.operations.jobs import terminate_job
from tests.execution import add, make_job, make_node, make_pool
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def section(response) -> str:
    body = response.content.decode()
    found = re.search(r'<section class="card" id="job-prep-release".*?</section>', body, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def prepared(account, pool):
    job = make_job(
        account,
        pool,
        "pj",
        jobPreparationTask={"commandLine": "/bin/sh -c 'echo <b>prep</b>'"},
        jobReleaseTask={"commandLine": "/bin/true"},
    )
    add(job, "t1")
    return job


def test_a_job_with_neither_task_has_no_section(op, account, pool):
    job = make_job(account, pool, "plain")
    assert section(op.get(job_url("job", job))) == ""


def test_before_any_node_ran_it_the_section_says_so(op, prepared):
    text = section(op.get(job_url("job", prepared)))
    assert "No node has run the preparation yet" in text


def test_lists_each_node_with_its_states_and_output_links(op, prepared, pool):
    node = make_node(pool, "n1")
    failed = make_node(pool, "n2")
    ops.finish_job_preparation(ops.start_job_preparation(prepared, node), exit_code=0)
    ops.finish_job_preparation(ops.start_job_preparation(prepared, failed), exit_code=4)
    terminate_job(prepared)
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    ops.finish_job_release(due, exit_code=0)
    text = section(op.get(job_url("job", prepared)))
    rows = dict(re.findall(r'<tr data-node="([^"]+)">(.*?)</tr>', text, re.S))
    assert set(rows) == {"n1", "n2"}
    assert "success" in rows["n1"] and "FailureExitCode" in rows["n2"] and ">4<" in rows["n2"]
    assert (
        f"/web/{prepared.account.name}/pools/pool1/nodes/n1/files/workitems/pj/job-1/jobpreparation/stdout.txt"
        in rows["n1"]
    )
    assert "workitems/pj/job-1/jobrelease/stdout.txt" in rows["n1"]
    assert "jobrelease" not in rows["n2"]  # its release has not run
    assert (
        "&lt;b&gt;prep&lt;/b&gt;" in text and "<b>prep</b>" not in text
    )  # the command line is escaped


def test_the_section_costs_one_query(op, prepared, pool):
    for n in range(3):
        ops.start_job_preparation(prepared, make_node(pool, f"n{n}"))
    plain = make_job(prepared.account, pool, "plain")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as without:
        op.get(job_url("job", plain))
    with CaptureQueriesContext(connection) as with_section:
        op.get(job_url("job", prepared))
    assert len(with_section) == len(without) + 1
