"""An account sees only its own pools, jobs and tasks (issue 2: another account's job is
JobNotFound)."""

import json

import pytest

from tasks.models import Job, Pool, Task
from tests.conftest import BatchTestClient, error_code
from tests.factories import AccountFactory, ComputeNodeFactory, JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs():
    """Another account's job (with a task) and pool (with a node)."""
    other = AccountFactory()
    job = JobFactory(account=other, job_id="shared-name")
    task = TaskFactory(job=job, task_id="t1", failed=True)
    pool = PoolFactory(account=other, pool_id="their-pool")
    ComputeNodeFactory(pool=pool, node_id="n1")
    return job, task, pool


def untouched(theirs) -> bool:
    job, task, pool = theirs
    return (
        Job.objects.filter(pk=job.pk, etag=job.etag, state="active", priority=0).exists()
        and Task.objects.filter(pk=task.pk, etag=task.etag, state="completed").exists()
        and Task.objects.filter(job=job).count() == 1
        and Pool.objects.filter(pk=pool.pk, etag=pool.etag).exists()
    )


JOB_CALLS = [
    ("GET", "/jobs/shared-name", None),
    ("PUT", "/jobs/shared-name", {"poolInfo": {"poolId": "p"}}),
    ("PATCH", "/jobs/shared-name", {"priority": 9}),
    ("DELETE", "/jobs/shared-name", None),
    ("POST", "/jobs/shared-name/terminate", {"terminateReason": "x"}),
    ("GET", "/jobs/shared-name/taskcounts", None),
    ("GET", "/jobs/shared-name/tasks", None),
    ("POST", "/jobs/shared-name/tasks", {"id": "t2", "commandLine": "x"}),
    ("POST", "/jobs/shared-name/addtaskcollection", {"value": [{"id": "t2", "commandLine": "x"}]}),
    ("GET", "/jobs/shared-name/tasks/t1", None),
    ("PUT", "/jobs/shared-name/tasks/t1", {}),
    ("DELETE", "/jobs/shared-name/tasks/t1", None),
    ("POST", "/jobs/shared-name/tasks/t1/terminate", None),
    ("POST", "/jobs/shared-name/tasks/t1/reactivate", None),
    ("GET", "/jobs/shared-name/tasks/t1/subtasksinfo", None),
]


@pytest.mark.parametrize(
    ("method", "path", "payload"), JOB_CALLS, ids=[f"{m} {p}" for m, p, _ in JOB_CALLS]
)
def test_another_accounts_job_is_job_not_found(batch, theirs, method, path, payload):
    r = batch.request(method, path, body=payload)
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")
    assert untouched(theirs)


POOL_CALLS = [
    ("GET", "/pools/their-pool"),
    ("DELETE", "/pools/their-pool"),
    ("GET", "/pools/their-pool/nodes"),
    ("GET", "/pools/their-pool/nodes/n1"),
]


@pytest.mark.parametrize(("method", "path"), POOL_CALLS)
def test_another_accounts_pool_is_pool_not_found(batch, theirs, method, path):
    r = batch.request(method, path)
    assert (r.status_code, error_code(r)) == (404, "PoolNotFound")
    assert untouched(theirs)


def test_pool_exists_says_no_for_another_accounts_pool(batch, theirs):
    assert batch.head("/pools/their-pool").status_code == 404


def test_lists_show_only_the_callers_own(batch, account, theirs):
    JobFactory(account=account, job_id="mine")
    PoolFactory(account=account, pool_id="my-pool")
    assert [j["id"] for j in json.loads(batch.get("/jobs").content)["value"]] == ["mine"]
    assert [p["id"] for p in json.loads(batch.get("/pools").content)["value"]] == ["my-pool"]


def test_the_same_ids_live_side_by_side_in_two_accounts(batch, account, theirs):
    assert (
        batch.post("/jobs", {"id": "shared-name", "poolInfo": {"poolId": "their-pool"}}).status_code
        == 201
    )
    assert (
        batch.post("/jobs/shared-name/tasks", {"id": "t1", "commandLine": "mine"}).status_code
        == 201
    )
    assert batch.post("/pools", {"id": "their-pool", "vmSize": "a"}).status_code == 201
    got = json.loads(batch.get("/jobs/shared-name/tasks/t1").content)
    assert (got["commandLine"], got["state"]) == ("mine", "active")
    assert untouched(theirs)


def test_the_other_account_still_reaches_its_own(theirs):
    job, task, pool = theirs
    client = BatchTestClient(job.account)
    assert client.get("/jobs/shared-name/tasks/t1").status_code == 200
    assert client.get("/pools/their-pool").status_code == 200
