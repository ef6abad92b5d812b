"""List paging: maxresults and the absolute odata.nextLink (REFERENCE §3)."""

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tasks.models import Task
from tests.conftest import error_code
from tests.factories import JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


def body(response) -> dict:
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def follow(batch, link: str, *, as_15x: bool = False):
    """Request a nextLink as 14.x does (verbatim) or as 15.x does (its own api-version)."""
    parsed = urlparse(link)
    assert (parsed.scheme, parsed.netloc) == ("http", "testserver")
    params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    if as_15x:
        params["api-version"] = "2025-06-01"
    return batch.get(parsed.path, params=params, api_version=None)


def walk(batch, path, params, *, as_15x=False):
    pages = [body(batch.get(path, params=params))]
    while "odata.nextLink" in pages[-1]:
        pages.append(body(follow(batch, pages[-1]["odata.nextLink"], as_15x=as_15x)))
        assert len(pages) < 100
    return pages


@pytest.fixture
def many(job):
    for i in range(23):
        TaskFactory(job=job, task_id=f"T{i:02d}", **({"succeeded": True} if i % 3 == 0 else {}))
    return sorted(t.lower() for t in Task.objects.filter(job=job).values_list("task_id", flat=True))


@pytest.mark.parametrize("as_15x", [False, True])
def test_walking_every_page_gives_every_task_once_in_order(batch, job, many, as_15x):
    pages = walk(batch, f"/jobs/{job.job_id}/tasks", {"maxresults": "5"}, as_15x=as_15x)
    assert [len(p["value"]) for p in pages] == [5, 5, 5, 5, 3]
    ids = [t["id"].lower() for p in pages for t in p["value"]]
    assert ids == many


def test_the_next_link_is_absolute_and_carries_the_whole_query(batch, job, many):
    params = {
        "maxresults": "2",
        "$filter": "state eq 'active'",
        "$select": "id,state",
        "$expand": "stats",
    }
    first = body(
        batch.get(f"/jobs/{job.job_id}/tasks", params=params, api_version="2024-02-01.19.0")
    )
    link = urlparse(first["odata.nextLink"])
    assert (link.scheme, link.netloc, link.path) == (
        "http",
        "testserver",
        f"/jobs/{job.job_id}/tasks",
    )
    query = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert query.pop("$skiptoken")
    assert query == {"api-version": "2024-02-01.19.0", **params}


def test_the_skiptoken_is_url_safe(batch, job):
    TaskFactory(job=job, task_id="a-b_C")
    TaskFactory(job=job, task_id="zz")
    link = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": "1"}))[
        "odata.nextLink"
    ]
    (raw,) = [
        v
        for k, v in (p.split("=", 1) for p in urlparse(link).query.split("&"))
        if k == "%24skiptoken"
    ]
    assert re.fullmatch(r"[A-Za-z0-9._~-]+", raw)


def test_a_filtered_walk_keeps_its_filter_and_selection_on_every_page(batch, job, many):
    params = {"maxresults": "3", "$filter": "state eq 'active'", "$select": "id,state"}
    pages = walk(batch, f"/jobs/{job.job_id}/tasks", params, as_15x=True)
    items = [t for p in pages for t in p["value"]]
    active = [t for t in many if int(t[1:]) % 3]
    assert [t["id"].lower() for t in items] == active
    assert all(set(t) == {"id", "state"} and t["state"] == "active" for t in items)


def test_a_filter_on_completed_results_pages_too(batch, job, many):
    pages = walk(
        batch,
        f"/jobs/{job.job_id}/tasks",
        {"maxresults": "2", "$filter": "executionInfo/result eq 'success'"},
    )
    assert [t["id"] for p in pages for t in p["value"]] == [
        "T00",
        "T03",
        "T06",
        "T09",
        "T12",
        "T15",
        "T18",
        "T21",
    ]


def test_tasks_added_while_walking_cause_no_duplicate_or_gap_among_the_rest(batch, job, many):
    first = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": "10"}))
    TaskFactory(job=job, task_id="A-early")  # sorts before the first page: not seen
    TaskFactory(job=job, task_id="zz-late")  # sorts after: seen
    rest = [first]
    while "odata.nextLink" in rest[-1]:
        rest.append(body(follow(batch, rest[-1]["odata.nextLink"])))
    ids = [t["id"].lower() for p in rest for t in p["value"]]
    assert ids == [*many, "zz-late"]


def test_the_last_page_has_no_next_link(batch, job, many):
    page = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": "23"}))
    assert len(page["value"]) == 23 and "odata.nextLink" not in page


def test_without_maxresults_a_page_holds_1000_tasks(batch, job):
    Task.objects.bulk_create(TaskFactory.build_batch(1001, job=job))
    page = body(batch.get(f"/jobs/{job.job_id}/tasks", params={"$select": "id"}))
    assert len(page["value"]) == 1000 and "odata.nextLink" in page
    rest = body(follow(batch, page["odata.nextLink"]))
    assert len(rest["value"]) == 1 and "odata.nextLink" not in rest


@pytest.mark.parametrize("value", ["1", "1000"])
def test_maxresults_between_1_and_1000_is_accepted(batch, job, many, value):
    assert len(
        body(batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": value}))["value"]
    ) == min(int(value), 23)


@pytest.mark.parametrize("value", ["0", "1001", "-5"])
def test_maxresults_out_of_range_is_refused(batch, job, value):
    # UNCONFIRMED (REFERENCE §15.14): 400 OutOfRangeQueryParameterValue.
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": value})
    assert (r.status_code, error_code(r)) == (400, "OutOfRangeQueryParameterValue")


@pytest.mark.parametrize("value", ["abc", "1.5", "ten"])
def test_maxresults_that_is_not_an_integer_is_refused(batch, job, value):
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": value})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")


@pytest.mark.parametrize(
    "token", ["!!!", "%%%", "\u00e9t\u00e9", "////", "garbage", "dDE", "YWJj", "MTIz" * 20]
)
def test_a_skiptoken_that_is_not_ours_is_an_invalid_query_parameter(batch, job, many, token):
    # Read as "from the start" it returned page 1 again: a client looping on nextLink
    # would never end, and a typo went unnoticed.
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$skiptoken": token})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue"), r.content
    assert (
        dict((v["key"], v["value"]) for v in json.loads(r.content)["values"])["QueryParameterName"]
        == "$skiptoken"
    )


def test_a_skiptoken_changed_by_one_character_is_refused(batch, job, many):
    link = json.loads(batch.get(f"/jobs/{job.job_id}/tasks", params={"maxresults": 2}).content)[
        "odata.nextLink"
    ]
    token = parse_qs(urlparse(link).query)["$skiptoken"][0]
    assert (
        batch.get(
            f"/jobs/{job.job_id}/tasks", params={"$skiptoken": token, "maxresults": 2}
        ).status_code
        == 200
    )
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$skiptoken": tampered, "maxresults": 2})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")


def test_jobs_page_through_next_links(batch, account):
    for i in range(7):
        JobFactory(account=account, job_id=f"j{i}")
    JobFactory(job_id="another-accounts")
    pages = walk(batch, "/jobs", {"maxresults": "3", "$select": "id"}, as_15x=True)
    assert [j["id"] for p in pages for j in p["value"]] == [f"j{i}" for i in range(7)]


def test_jobs_page_with_a_filter(batch, account):
    for i in range(5):
        JobFactory(account=account, job_id=f"keep{i}")
        JobFactory(account=account, job_id=f"drop{i}")
    pages = walk(batch, "/jobs", {"maxresults": "2", "$filter": "startswith(id,'keep')"})
    assert [j["id"] for p in pages for j in p["value"]] == [f"keep{i}" for i in range(5)]


def test_pools_page_through_next_links(batch, account):
    for i in range(5):
        PoolFactory(account=account, pool_id=f"p{i}")
    pages = walk(batch, "/pools", {"maxresults": "2"})
    assert [p_["id"] for p in pages for p_ in p["value"]] == [f"p{i}" for i in range(5)]
