"""Failure triage: failed tasks grouped by exit code, failure code and node, each group
with a link to exactly its tasks and a bulk reactivate."""

import pytest

from tests.factories import TaskFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(job):
    for _ in range(3):
        TaskFactory(job=job, failed=True, exit_code=137, node_name="bad-node")
    TaskFactory(job=job, failed=True, exit_code=1, node_name="good-node")
    TaskFactory(
        job=job,
        state="completed",
        result="failure",
        exit_code=None,
        failure_info={"category": "usererror", "code": "TaskEnded", "message": "terminated"},
    )
    TaskFactory(job=job, succeeded=True, node_name="good-node")
    return job


def test_groups_failed_tasks_three_ways_largest_first(op, failed):
    body = op.get(job_url("job-triage", failed)).content.decode()
    by_exit = body.split('data-group="exit_code"')[1].split("</section>")[0]
    assert by_exit.index('data-value="137"') < by_exit.index('data-value="1"')
    by_code = body.split('data-group="failure_code"')[1].split("</section>")[0]
    assert 'data-value="FailureExitCode"' in by_code and 'data-value="TaskEnded"' in by_code
    by_node = body.split('data-group="node"')[1].split("</section>")[0]
    assert ">3<" in by_node.split('data-value="bad-node"')[1]


def test_each_group_offers_a_bulk_reactivate_of_exactly_its_tasks(op, failed):
    body = op.get(job_url("job-triage", failed)).content.decode()
    assert (
        "bulk/?action=reactivate&amp;state=completed&amp;result=failure&amp;exit_code=137" in body
    )
    preview = op.get(
        job_url(
            "job-bulk",
            failed,
            action="reactivate",
            state="completed",
            result="failure",
            exit_code="137",
        )
    ).content.decode()
    assert 'id="bulk-count">3<' in preview


def test_costs_a_fixed_number_of_queries(op, failed, django_assert_num_queries):
    # session, user, membership, job, three groupings
    with django_assert_num_queries(7):
        op.get(job_url("job-triage", failed))


def test_a_viewer_sees_the_groups_but_no_enabled_reactivate(view, failed):
    body = view.get(job_url("job-triage", failed)).content.decode()
    assert "bad-node" in body and "Reactivate 3" not in body
