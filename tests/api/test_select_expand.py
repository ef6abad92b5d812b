"""$select and $expand on the get and list operations (REFERENCE §1, §6.3)."""

import json

import pytest

from tests.conftest import error_code
from tests.factories import ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


@pytest.fixture
def task(job):
    return TaskFactory(job=job, task_id="t1", succeeded=True, display_name="shown")


def test_select_keeps_only_the_named_properties_of_a_task(batch, job, task):
    got = body(
        batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$select": "id,state,executionInfo"})
    )
    assert set(got) == {"id", "state", "executionInfo", "odata.metadata"}
    assert got["executionInfo"]["exitCode"] == 0


def test_select_names_match_whatever_their_case_and_spacing(batch, job, task):
    # UNCONFIRMED (REFERENCE §15.9): $select names are case-insensitive.
    got = body(
        batch.get(
            f"/jobs/{job.job_id}/tasks/t1", params={"$select": "ID, DisplayName ,commandline"}
        )
    )
    assert {k: got[k] for k in ("id", "displayName", "commandLine")} == {
        "id": "t1",
        "displayName": "shown",
        "commandLine": "/bin/true",
    }


def test_select_of_unknown_or_absent_properties_leaves_them_out(batch, job, task):
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$select": "id,nosuch,nodeInfo"}))
    assert set(got) == {"id", "odata.metadata"}


def test_select_applies_to_every_listed_task(batch, job, task):
    TaskFactory(job=job, task_id="t2")
    got = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"$select": "id,state"}))
    assert got["value"] == [{"id": "t1", "state": "completed"}, {"id": "t2", "state": "active"}]


def test_expand_stats_adds_the_statistics_of_a_task(batch, job, task):
    got = body(batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$expand": "stats"}))
    assert got["stats"]["url"] == f"http://testserver/jobs/{job.job_id}/tasks/t1"


@pytest.mark.parametrize("value", ["stats", "Stats", "STATS", "stats,stats"])
def test_expand_stats_is_case_insensitive(batch, job, task, value):
    assert "stats" in body(batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$expand": value}))


def test_expand_with_select_keeps_stats_only_when_selected(batch, job, task):
    both = body(
        batch.get(
            f"/jobs/{job.job_id}/tasks/t1", params={"$expand": "stats", "$select": "id,stats"}
        )
    )
    assert set(both) == {"id", "stats", "odata.metadata"}
    without = body(
        batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$expand": "stats", "$select": "id"})
    )
    assert "stats" not in without


def test_select_of_stats_without_expand_gives_no_stats(batch, job, task):
    assert "stats" not in body(
        batch.get(f"/jobs/{job.job_id}/tasks/t1", params={"$select": "id,stats"})
    )


def test_expand_stats_applies_to_every_listed_task(batch, job, task):
    TaskFactory(job=job, task_id="t2")
    got = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"$expand": "stats"}))
    assert all("stats" in t for t in got["value"])


@pytest.mark.parametrize(
    "path", ["/jobs/{job}/tasks/t1", "/jobs/{job}/tasks", "/jobs/{job}", "/jobs"]
)
@pytest.mark.parametrize("value", ["nodeInfo", "stats,files", "*"])
def test_expanding_anything_but_stats_is_refused(batch, job, task, path, value):
    r = batch.get(path.format(job=job.job_id), params={"$expand": value})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    assert {v["key"]: v["value"] for v in json.loads(r.content)["values"]}[
        "QueryParameterName"
    ] == "$expand"


def test_select_and_expand_on_jobs(batch, account):
    JobFactory(account=account, job_id="j1", succeeded_count=2)
    got = body(batch.get("/jobs/j1", params={"$select": "id,state,stats", "$expand": "stats"}))
    assert set(got) == {"id", "state", "stats", "odata.metadata"}
    assert got["stats"]["numSucceededTasks"] == "2"
    listed = body(batch.get("/jobs", params={"$select": "id"}))
    assert listed["value"] == [{"id": "j1"}]


def test_select_on_pools_and_nodes(batch, account):
    pool = PoolFactory(account=account, pool_id="p1")
    ComputeNodeFactory(pool=pool, node_id="n1")
    got = body(batch.get("/pools/p1", params={"$select": "id,vmSize"}))
    assert got.pop("odata.metadata") == "http://testserver/$metadata#pools/@Element"
    assert got == {"id": "p1", "vmSize": "standard_d2s_v3"}
    assert body(batch.get("/pools", params={"$select": "id"}))["value"] == [{"id": "p1"}]
    assert body(batch.get("/pools/p1/nodes", params={"$select": "id,state"}))["value"] == [
        {"id": "n1", "state": "idle"}
    ]
    got = body(batch.get("/pools/p1/nodes/n1", params={"$select": "id"}))
    assert got.pop("odata.metadata") == "http://testserver/$metadata#nodes/@Element"
    assert got == {"id": "n1"}
