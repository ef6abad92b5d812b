"""List Preparation and Release Task Status on the wire
(GET /jobs/{job}/jobpreparationandreleasetaskstatus)."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.operations import job_preparation as ops
from tasks.operations.jobs import terminate_job
from tests.conftest import BatchTestClient, error_code
from tests.execution import add, make_job, make_node, make_pool
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db
PATH = "/jobs/{}/jobpreparationandreleasetaskstatus"


@pytest.fixture
def pool(account):
    return make_pool(account)


def prepared(account, pool, job_id="job1", **spec):
    job = make_job(
        account,
        pool,
        job_id,
        jobPreparationTask={"commandLine": "/bin/true"},
        jobReleaseTask={"commandLine": "/bin/true"},
        **spec,
    )
    add(job, "t1")
    return job


def run_prep(job, node, exit_code=0):
    record = ops.start_job_preparation(job, node)
    ops.finish_job_preparation(record, exit_code=exit_code)
    return record


def listed(batch, job, **params) -> dict:
    r = batch.get(PATH.format(job.job_id), params=params)
    assert r.status_code == 200, r.content
    return json.loads(r.content)


def test_lists_each_node_with_its_preparation_execution_info(batch, account, pool):
    job = prepared(account, pool)
    node = make_node(pool, "node-1")
    run_prep(job, node, exit_code=0)
    body = listed(batch, job)
    assert body["odata.metadata"].endswith("$metadata#jobpreparationandreleasetaskstatuslist")
    [entry] = body["value"]
    assert (entry["poolId"], entry["nodeId"]) == ("pool1", "node-1")
    assert entry["nodeUrl"].endswith("/pools/pool1/nodes/node-1")
    info = entry["jobPreparationTaskExecutionInfo"]
    assert (info["state"], info["result"], info["exitCode"], info["retryCount"]) == (
        "completed",
        "success",
        0,
        0,
    )
    assert info["taskRootDirectory"] == f"{node.root_dir}/workitems/job1/job-1/jobpreparation"
    assert info["taskRootDirectoryUrl"].endswith(
        "/pools/pool1/nodes/node-1/files/workitems/job1/job-1/jobpreparation"
    )
    assert info["startTime"].endswith("Z") and info["endTime"].endswith("Z")
    assert "failureInfo" not in info and "jobReleaseTaskExecutionInfo" not in entry


def test_a_running_preparation_has_no_end_or_result(batch, account, pool):
    job = prepared(account, pool)
    ops.start_job_preparation(job, make_node(pool, "node-1"))
    info = listed(batch, job)["value"][0]["jobPreparationTaskExecutionInfo"]
    assert info["state"] == "running"
    assert not {"endTime", "result", "exitCode"} & set(info)


def test_a_failed_preparation_carries_its_failure_info(batch, account, pool):
    job = prepared(account, pool)
    run_prep(job, make_node(pool, "node-1"), exit_code=7)
    info = listed(batch, job)["value"][0]["jobPreparationTaskExecutionInfo"]
    assert (
        info["result"],
        info["exitCode"],
        info["failureInfo"]["category"],
        info["failureInfo"]["code"],
    ) == ("failure", 7, "UserError", "FailureExitCode")


def test_the_release_appears_once_it_ran(batch, account, pool):
    job = prepared(account, pool)
    node = make_node(pool, "node-1")
    run_prep(job, node)
    terminate_job(job)
    [due] = ops.releases_due(node)
    ops.start_job_release(due, node)
    ops.finish_job_release(due, exit_code=0)
    release = listed(batch, job)["value"][0]["jobReleaseTaskExecutionInfo"]
    assert (release["state"], release["result"], release["exitCode"]) == ("completed", "success", 0)
    assert release["taskRootDirectoryUrl"].endswith("/files/workitems/job1/job-1/jobrelease")


def test_a_job_with_neither_task_is_409(batch, account, pool):
    job = make_job(account, pool, "plain")
    r = batch.get(PATH.format(job.job_id))
    assert (r.status_code, error_code(r)) == (409, "JobPreparationTaskOrReleaseTaskNotSpecified")


def test_a_job_with_either_task_lists_nothing_before_any_node_ran_it(batch, account, pool):
    job = make_job(account, pool, "r", jobReleaseTask={"commandLine": "/bin/true"})
    assert listed(batch, job)["value"] == []


def test_an_unknown_job_is_404(batch, account):
    r = batch.get(PATH.format("nosuch"))
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_another_accounts_job_is_not_found(account, pool):
    job = prepared(account, pool)
    run_prep(job, make_node(pool, "node-1"))
    other = BatchTestClient(AccountFactory())
    r = other.get(PATH.format(job.job_id))
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_filter_by_node_and_state(batch, account, pool):
    job = prepared(account, pool)
    run_prep(job, make_node(pool, "node-1"), exit_code=0)
    run_prep(job, make_node(pool, "node-2"), exit_code=1)
    ids = [e["nodeId"] for e in listed(batch, job, **{"$filter": "nodeId eq 'node-2'"})["value"]]
    assert ids == ["node-2"]
    ids = [
        e["nodeId"]
        for e in listed(
            batch, job, **{"$filter": "jobPreparationTaskExecutionInfo/result eq 'success'"}
        )["value"]
    ]
    assert ids == ["node-1"]


def test_a_bad_filter_is_a_batch_400(batch, account, pool):
    job = prepared(account, pool)
    r = batch.get(PATH.format(job.job_id), params={"$filter": "color eq 'red'"})
    assert r.status_code == 400


def test_select_keeps_only_the_named_properties(batch, account, pool):
    job = prepared(account, pool)
    run_prep(job, make_node(pool, "node-1"))
    [entry] = listed(batch, job, **{"$select": "nodeId"})["value"]
    assert entry == {"nodeId": "node-1"}


def test_maxresults_pages_with_a_next_link(batch, account, pool):
    job = prepared(account, pool)
    for n in range(3):
        run_prep(job, make_node(pool, f"node-{n}"))
    first = listed(batch, job, maxresults=2)
    assert len(first["value"]) == 2 and "odata.nextLink" in first
    query = parse_qs(urlsplit(first["odata.nextLink"]).query)
    second = listed(batch, job, maxresults=2, **{"$skiptoken": query["$skiptoken"][0]})
    assert len(second["value"]) == 1 and "odata.nextLink" not in second
    assert {e["nodeId"] for e in first["value"] + second["value"]} == {"node-0", "node-1", "node-2"}


def test_the_list_costs_the_same_queries_for_one_node_or_five(
    batch, account, pool, django_assert_max_num_queries
):
    job = prepared(account, pool)
    for n in range(5):
        run_prep(job, make_node(pool, f"node-{n}"))
    with django_assert_max_num_queries(6):
        assert len(listed(batch, job)["value"]) == 5
