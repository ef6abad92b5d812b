"""If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since (REFERENCE §4)."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tasks.models import Job, Pool, Task
from tests.conftest import error_code
from tests.factories import JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db

ETAG = "0x8D4125FD1A825A4"
MODIFIED = datetime(2024, 1, 1, 12, 0, 0, 500_000, tzinfo=UTC)


def http_date(value: datetime) -> str:
    return format_datetime(value, usegmt=True)


BEFORE = http_date(MODIFIED - timedelta(seconds=1))
SAME = http_date(MODIFIED)  # the header has whole seconds; the row has a fraction
AFTER = http_date(MODIFIED + timedelta(seconds=1))


@pytest.fixture
def task(job):
    return TaskFactory(job=job, task_id="t1", etag=ETAG, last_modified=MODIFIED)


def get(batch, task, headers):
    return batch.get(f"/jobs/{task.job.job_id}/tasks/{task.task_id}", headers=headers)


# --- reads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [ETAG, f'"{ETAG}"', f'W/"{ETAG}"', "*", f'"0x1", "{ETAG}"', f"0x1,{ETAG}"]
)
def test_get_with_a_matching_if_match_is_served(batch, task, value):
    assert get(batch, task, {"If-Match": value}).status_code == 200


@pytest.mark.parametrize("value", ["0x1", '"0x1"', f"{ETAG}0", '"0x1", "0x2"'])
def test_get_with_an_if_match_that_does_not_match_is_412(batch, task, value):
    r = get(batch, task, {"If-Match": value})
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")


@pytest.mark.parametrize("value", [ETAG, f'"{ETAG}"', f'W/"{ETAG}"', "*"])
def test_get_with_a_matching_if_none_match_is_304_without_a_body(batch, task, value):
    r = get(batch, task, {"If-None-Match": value})
    assert r.status_code == 304 and r.content == b""
    assert r["request-id"]


@pytest.mark.parametrize("value", ["0x1", '"0x1"'])
def test_get_with_an_if_none_match_that_does_not_match_is_served(batch, task, value):
    assert get(batch, task, {"If-None-Match": value}).status_code == 200


@pytest.mark.parametrize(("since", "status"), [(BEFORE, 200), (SAME, 304), (AFTER, 304)])
def test_get_with_if_modified_since(batch, task, since, status):
    assert get(batch, task, {"If-Modified-Since": since}).status_code == status


@pytest.mark.parametrize(("since", "status"), [(BEFORE, 412), (SAME, 200), (AFTER, 200)])
def test_get_with_if_unmodified_since(batch, task, since, status):
    r = get(batch, task, {"If-Unmodified-Since": since})
    assert r.status_code == status
    if status == 412:
        assert error_code(r) == "ConditionNotMet"


def test_the_etag_a_get_answers_with_satisfies_if_none_match_as_15x_quotes_it(batch, task):
    etag = get(batch, task, {})["ETag"]
    assert get(batch, task, {"If-None-Match": f'"{etag}"'}).status_code == 304


def test_if_none_match_wins_over_if_modified_since(batch, task):
    assert get(batch, task, {"If-None-Match": "0x1", "If-Modified-Since": AFTER}).status_code == 200
    assert get(batch, task, {"If-None-Match": ETAG, "If-Modified-Since": BEFORE}).status_code == 304


def test_if_match_wins_over_if_unmodified_since(batch, task):
    assert get(batch, task, {"If-Match": ETAG, "If-Unmodified-Since": BEFORE}).status_code == 200
    assert get(batch, task, {"If-Match": "0x1", "If-Unmodified-Since": AFTER}).status_code == 412


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": ETAG, "If-None-Match": "0x1"},
        {"If-Match": ETAG, "If-Modified-Since": BEFORE},
        {"If-None-Match": "0x1", "If-Unmodified-Since": AFTER},
        {"If-Modified-Since": BEFORE, "If-Unmodified-Since": AFTER},
        {"If-Match": ETAG, "If-None-Match": "0x1", "If-Modified-Since": BEFORE},
    ],
)
def test_other_combinations_of_conditions_are_refused(batch, task, headers):
    r = get(batch, task, headers)
    assert (r.status_code, error_code(r)) == (400, "MultipleConditionHeadersNotSupported")


@pytest.mark.parametrize("name", ["If-Modified-Since", "If-Unmodified-Since"])
def test_an_unreadable_date_condition_is_an_invalid_header(batch, task, name):
    r = get(batch, task, {name: "last tuesday"})
    assert (r.status_code, error_code(r)) == (400, "InvalidHeaderValue")


def test_a_condition_on_a_missing_task_is_task_not_found(batch, job):
    r = batch.get(f"/jobs/{job.job_id}/tasks/none", headers={"If-Match": "*"})
    assert (r.status_code, error_code(r)) == (404, "TaskNotFound")


# --- writes ------------------------------------------------------------------------------

WRITES = {
    "update": lambda b, t, h: b.put(
        f"/jobs/{t.job.job_id}/tasks/{t.task_id}",
        {"constraints": {"maxTaskRetryCount": 5}},
        headers=h,
    ),
    "delete": lambda b, t, h: b.delete(f"/jobs/{t.job.job_id}/tasks/{t.task_id}", headers=h),
    "terminate": lambda b, t, h: b.post(
        f"/jobs/{t.job.job_id}/tasks/{t.task_id}/terminate", headers=h
    ),
    "reactivate": lambda b, t, h: b.post(
        f"/jobs/{t.job.job_id}/tasks/{t.task_id}/reactivate", headers=h
    ),
}
SUCCESS = {"update": 200, "delete": 200, "terminate": 204, "reactivate": 204}


@pytest.fixture
def write_task(job, request):
    traits = {"failed": True} if request.node.callspec.params["op"] == "reactivate" else {}
    return TaskFactory(job=job, task_id="w1", etag=ETAG, last_modified=MODIFIED, **traits)


def unchanged(task) -> bool:
    return Task.objects.filter(pk=task.pk, etag=ETAG).exists()


@pytest.mark.parametrize("op", WRITES)
@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": "0x1"},
        {"If-Match": '"0x1"'},
        {"If-None-Match": ETAG},
        {"If-None-Match": f'"{ETAG}"'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": SAME},
        {"If-Modified-Since": AFTER},
        {"If-Unmodified-Since": BEFORE},
    ],
)
def test_an_unmet_condition_on_a_write_is_412_and_changes_nothing(batch, write_task, op, headers):
    r = WRITES[op](batch, write_task, headers)
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    assert unchanged(write_task)


@pytest.mark.parametrize("op", WRITES)
@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": ETAG},
        {"If-Match": f'"{ETAG}"'},
        {"If-Match": "*"},
        {"If-None-Match": '"0x1"'},
        {"If-Modified-Since": BEFORE},
        {"If-Unmodified-Since": SAME},
    ],
)
def test_a_met_condition_lets_the_write_through(batch, write_task, op, headers):
    assert WRITES[op](batch, write_task, headers).status_code == SUCCESS[op]
    assert not unchanged(write_task)


@pytest.mark.parametrize("op", WRITES)
def test_a_write_with_conflicting_conditions_is_refused_before_anything_else(batch, write_task, op):
    r = WRITES[op](batch, write_task, {"If-Match": ETAG, "If-None-Match": "0x1"})
    assert (r.status_code, error_code(r)) == (400, "MultipleConditionHeadersNotSupported")
    assert unchanged(write_task)


def test_the_etag_an_update_answers_with_is_the_one_the_next_write_must_match(batch, job):
    task = TaskFactory(job=job, task_id="t1")
    first = batch.put(f"/jobs/{job.job_id}/tasks/t1", {}, headers={"If-Match": f'"{task.etag}"'})
    assert first.status_code == 200
    stale = batch.put(f"/jobs/{job.job_id}/tasks/t1", {}, headers={"If-Match": task.etag})
    assert stale.status_code == 412
    fresh = batch.put(f"/jobs/{job.job_id}/tasks/t1", {}, headers={"If-Match": first["ETag"]})
    assert fresh.status_code == 200


# --- jobs and pools ----------------------------------------------------------------------


def test_job_get_honours_the_conditions(batch, account):
    job = JobFactory(account=account, etag=ETAG, last_modified=MODIFIED)
    url = f"/jobs/{job.job_id}"
    assert batch.get(url, headers={"If-None-Match": f'"{ETAG}"'}).status_code == 304
    assert batch.get(url, headers={"If-Match": "0x1"}).status_code == 412
    assert batch.get(url, headers={"If-Modified-Since": SAME}).status_code == 304
    assert batch.get(url, headers={"If-Unmodified-Since": BEFORE}).status_code == 412
    assert batch.get(url, headers={"If-Match": ETAG}).status_code == 200


@pytest.mark.parametrize("op", ["delete", "terminate", "update"])
def test_job_writes_refuse_an_unmet_condition(batch, account, op):
    job = JobFactory(account=account, etag=ETAG, last_modified=MODIFIED)
    url = f"/jobs/{job.job_id}"
    headers = {"If-Match": "0x1"}
    r = {
        "delete": lambda: batch.delete(url, headers=headers),
        "terminate": lambda: batch.post(
            f"{url}/terminate", {"terminateReason": "x"}, headers=headers
        ),
        "update": lambda: batch.patch(url, {"priority": 5}, headers=headers),
    }[op]()
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    job.refresh_from_db()
    assert (job.state, job.etag, job.priority) == (Job.State.ACTIVE, ETAG, 0)


def test_pool_get_exists_and_delete_honour_the_conditions(batch, account):
    pool = PoolFactory(account=account, etag=ETAG, last_modified=MODIFIED)
    url = f"/pools/{pool.pool_id}"
    assert batch.get(url, headers={"If-None-Match": ETAG}).status_code == 304
    assert batch.head(url, headers={"If-None-Match": ETAG}).status_code == 304
    assert batch.head(url, headers={"If-Match": "0x1"}).status_code == 412
    r = batch.delete(url, headers={"If-Match": "0x1"})
    assert (r.status_code, error_code(r)) == (412, "ConditionNotMet")
    assert Pool.objects.filter(pk=pool.pk).exists()
    assert batch.delete(url, headers={"If-Match": f'"{ETAG}"'}).status_code == 202


def test_operations_without_conditions_ignore_them(batch, job, task):
    headers = {"If-Match": "0x1"}
    assert batch.get(f"/jobs/{job.job_id}/tasks", headers=headers).status_code == 200
    assert batch.get(f"/jobs/{job.job_id}/taskcounts", headers=headers).status_code == 200
    assert (
        batch.post(
            f"/jobs/{job.job_id}/tasks", {"id": "n", "commandLine": "x"}, headers=headers
        ).status_code
        == 201
    )
