"""Task authentication tokens (tasks.api.tokens): `Authorization: Bearer <token>` serves the
operations of the token's own job while its task runs, and nothing else."""

from datetime import timedelta

import pytest

from tasks.api import tokens
from tasks.models import Attempt, Task
from tasks.operations import task_tokens
from tasks.operations.task_ends import requeue_attempts
from tasks.operations.task_tokens import issue_task_token, token_digest
from tests.conftest import BatchTestClient, error_code
from tests.execution import add, claim, finish, make_job, make_node, make_pool
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TOKEN_SETTINGS = {"access": ["job"]}


class TokenClient(BatchTestClient):
    """Requests that carry a bearer token instead of a Shared Key signature."""

    def __init__(self, account, token: str):
        super().__init__(account)
        self.token = token

    def request(self, method, path, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **(kw.pop("headers", None) or {})}
        return super().request(method, path, headers=headers, sign_request=False, **kw)


@pytest.fixture
def pool(account):
    return make_pool(account)


@pytest.fixture
def running(account, pool):
    """The attempt of a running task that asked for a token, in job1 (job2 is beside it)."""
    job = make_job(account, pool, "job1")
    make_job(account, pool, "job2")
    add(job, "manager", authenticationTokenSettings=TOKEN_SETTINGS)
    [attempt] = claim(make_node(pool))
    return attempt


@pytest.fixture
def token(running):
    return issue_task_token(running)


@pytest.fixture
def client(account, token):
    return TokenClient(account, token)


def test_a_task_that_asked_for_a_token_gets_it_and_the_account_url(running, settings):
    settings.BATCHSITE_ACCOUNT_URL = "http://batch.example:8123"
    env = task_tokens.task_environment(running)
    assert set(env) == {"AZ_BATCH_AUTHENTICATION_TOKEN", "AZ_BATCH_ACCOUNT_URL"}
    assert env["AZ_BATCH_ACCOUNT_URL"] == "http://batch.example:8123"
    assert (
        TokenClient(running.job.account, env["AZ_BATCH_AUTHENTICATION_TOKEN"])
        .get("/jobs/job1")
        .status_code
        == 200
    )


def test_a_task_that_did_not_ask_gets_no_token(account, pool):
    job = make_job(account, pool, "plain")
    add(job, "t1")
    [attempt] = claim(make_node(pool))
    assert task_tokens.task_environment(attempt) == {}


# --- what a token may do -----------------------------------------------------------------


def test_a_token_gets_and_updates_its_own_job(client):
    assert client.get("/jobs/job1").status_code == 200
    assert client.get("/jobs/JOB1").status_code == 200  # job ids compare case-insensitively
    assert client.patch("/jobs/job1", {"priority": 5}).status_code == 200


def test_a_token_adds_lists_and_gets_the_tasks_of_its_job(client):
    assert (
        client.post("/jobs/job1/tasks", {"id": "w1", "commandLine": "/bin/true"}).status_code == 201
    )
    collection = client.post(
        "/jobs/job1/addtaskcollection", {"value": [{"id": "w2", "commandLine": "/bin/true"}]}
    )
    assert collection.status_code == 200
    listed = client.get("/jobs/job1/tasks")
    assert listed.status_code == 200
    assert {t["id"] for t in listed.json()["value"]} == {"manager", "w1", "w2"}
    assert client.get("/jobs/job1/tasks/w1").status_code == 200
    assert client.get("/jobs/job1/taskcounts").status_code == 200
    assert Task.objects.filter(job__job_id="job1").count() == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs/job2"),
        ("POST", "/jobs/job2/tasks"),
        ("GET", "/jobs/job2/tasks"),
        ("POST", "/jobs/job2/terminate"),
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/pools"),
        ("GET", "/pools/pool1"),
        ("POST", "/pools"),
        ("GET", "/jobschedules"),
        ("GET", "/nodecounts"),
        ("GET", "/supportedimages"),
    ],
)
def test_a_token_is_refused_outside_its_job(client, method, path):
    body = (
        {"id": "x", "commandLine": "/bin/true", "poolInfo": {"poolId": "pool1"}}
        if method == "POST"
        else None
    )
    response = client.request(method, path, body=body)
    assert (response.status_code, error_code(response)) == (403, "AuthorizationFailure")
    assert not Task.objects.filter(task_id="x").exists()


def test_a_token_never_reaches_another_account(client, account):
    other = AccountFactory(name="otheracct")
    other_pool = make_pool(other, "pool1")
    make_job(other, other_pool, "job1", metadata=[{"name": "owner", "value": "other"}])
    got = client.get("/jobs/job1")
    assert got.status_code == 200
    assert got.json().get("metadata") is None  # its own account's job1, not the other's


# --- tokens that are not (or no longer) good ---------------------------------------------


def test_a_token_is_revoked_when_its_task_ends(client, running):
    finish(running, exit_code=0)
    response = client.get("/jobs/job1")
    assert (response.status_code, error_code(response)) == (403, "AuthenticationFailed")


def test_a_token_is_revoked_when_its_task_is_requeued(client, running):
    requeue_attempts([running.pk])
    claim(
        make_node(running.job.account.pools.get(), "node-2")
    )  # the task runs again, as a new attempt
    assert Attempt.objects.filter(task=running.task, outcome="running").exists()
    assert client.get("/jobs/job1").status_code == 403


def test_a_token_expires_after_the_longest_task_lifetime(client, running):
    Attempt.objects.filter(pk=running.pk).update(
        start_time=running.start_time - tokens.MAX_LIFETIME + timedelta(minutes=1)
    )
    assert client.get("/jobs/job1").status_code == 200
    Attempt.objects.filter(pk=running.pk).update(
        start_time=running.start_time - tokens.MAX_LIFETIME - timedelta(minutes=1)
    )
    response = client.get("/jobs/job1")
    assert (response.status_code, error_code(response)) == (403, "AuthenticationFailed")


def test_a_token_expires_with_its_tasks_max_wall_clock_time(client, running):
    Task.objects.filter(pk=running.task_id).update(max_wall_clock_time=timedelta(minutes=1))
    assert client.get("/jobs/job1").status_code == 200
    Attempt.objects.filter(pk=running.pk).update(
        start_time=running.start_time - timedelta(minutes=2)
    )
    assert client.get("/jobs/job1").status_code == 403


def test_only_a_digest_of_the_token_is_stored(running, token):
    stored = Attempt.objects.get(pk=running.pk).token_hash
    assert stored == token_digest(token.split(".", 1)[1]) and token.split(".", 1)[1] not in stored


def _tampered(token: str) -> list[tuple[str, tuple[int, str]]]:
    pk, secret = token.split(".")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    refused, malformed = (403, "AuthenticationFailed"), (400, "InvalidAuthenticationInfo")
    return [
        (f"{pk}.{flipped}", refused),
        (f"{int(pk) + 1}.{secret}", refused),
        (f"0{pk}.{secret}", malformed),
        (f"{pk}.{secret[:-1]}", malformed),
        (f"{pk}.{secret}x", malformed),
        (f"{pk}{secret}", malformed),
        (secret, malformed),
    ]


def test_a_tampered_token_is_refused(account, token, running):
    add(running.job, "other", authenticationTokenSettings=TOKEN_SETTINGS)
    claim(
        make_node(running.job.account.pools.get(), "node-2")
    )  # another running attempt, pk + 1, with no token
    for bad, expected in _tampered(token):
        response = TokenClient(account, bad).get("/jobs/job1")
        assert (response.status_code, error_code(response)) == expected, bad


def test_another_runs_token_does_not_open_this_run(account, running, token):
    job = running.job
    add(job, "second", authenticationTokenSettings=TOKEN_SETTINGS)
    [second] = claim(make_node(job.account.pools.get(), "node-2"))
    other = issue_task_token(second)
    # A secret is good only with the attempt it was issued for.
    mixed = f"{running.pk}.{other.split('.')[1]}"
    assert TokenClient(account, mixed).get("/jobs/job1").status_code == 403
    assert TokenClient(account, other).get("/jobs/job1").status_code == 200


def test_a_token_of_a_run_that_asked_for_none_is_refused(account, pool):
    job = make_job(account, pool, "quiet")
    add(job, "t1")
    [attempt] = claim(make_node(pool, "node-3"))
    # No digest stored: whatever secret comes with its pk is refused.
    guess = f"{attempt.pk}.{'A' * 43}"
    assert TokenClient(account, guess).get("/jobs/quiet").status_code == 403


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer a b", "Bearer " + "x" * 5000, "bearer \u00e9t\u00e9"]
)
def test_a_malformed_bearer_header_is_refused(account, running, header):
    response = BatchTestClient(account).request(
        "GET", "/jobs/job1", headers={"Authorization": header}, sign_request=False
    )
    assert (response.status_code, error_code(response)) == (400, "InvalidAuthenticationInfo")


def test_the_digests_are_compared_in_constant_time(client, token, monkeypatch):
    seen = []
    real = tokens.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    assert client.get("/jobs/job1").status_code == 200
    assert (
        TokenClient(client.account, "999999.".ljust(50, "A")).get("/jobs/job1").status_code == 403
    )
    # Both the real token and one naming no attempt were judged by compare_digest.
    assert len(seen) == 2 and seen[0][1] == token_digest(token.split(".")[1])


def test_shared_key_still_serves_the_same_paths(batch, running):
    assert batch.get("/jobs").status_code == 200
    assert batch.get("/jobs/job2").status_code == 200
