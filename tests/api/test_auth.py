"""Shared Key authentication on every Batch API call (REFERENCE §5)."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.utils import timezone

from tasks.models import Pool
from tests.conftest import API, BatchTestClient, error_code, sign
from tests.factories import AccountFactory, JobFactory, PoolFactory, TaskFactory

pytestmark = pytest.mark.django_db


def http_date(delta=timedelta(0)):
    return format_datetime(timezone.now() + delta, usegmt=True)


def detail(response) -> str:
    return dict((v["key"], v["value"]) for v in json.loads(response.content).get("values", []))[
        "AuthenticationErrorDetail"]


def test_a_request_signed_with_the_primary_key_is_served(batch, job):
    assert batch.get(f"/jobs/{job.job_id}").status_code == 200


def test_a_request_signed_with_the_secondary_key_is_served(account, job):
    client = BatchTestClient(account, key=account.secondary_key)
    assert client.get(f"/jobs/{job.job_id}").status_code == 200


def test_a_request_signed_with_a_wrong_key_is_refused(account, job):
    wrong = base64.b64encode(b"not-the-key-of-this-account-0000").decode()
    r = BatchTestClient(account, key=wrong).get(f"/jobs/{job.job_id}")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")
    assert "Server failed to authenticate the request" in json.loads(r.content)["message"]["value"]


def test_another_accounts_key_does_not_open_this_account(account, job):
    other = AccountFactory()
    r = BatchTestClient(account, key=other.primary_key).get(f"/jobs/{job.job_id}")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_an_unknown_account_is_refused_like_a_bad_signature(account, job):
    r = BatchTestClient(account, name="nosuchaccount").get(f"/jobs/{job.job_id}")
    bad = BatchTestClient(account, key=AccountFactory().primary_key).get(f"/jobs/{job.job_id}")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")
    assert detail(r) == detail(bad)  # no hint of which account names exist


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24])
def test_a_date_more_than_15_minutes_away_is_refused(batch, job, minutes):
    batch.date_override = http_date(timedelta(minutes=minutes))
    r = batch.get(f"/jobs/{job.job_id}")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


@pytest.mark.parametrize("minutes", [-14, 14])
def test_a_date_within_15_minutes_is_accepted(batch, job, minutes):
    batch.date_override = http_date(timedelta(minutes=minutes))
    assert batch.get(f"/jobs/{job.job_id}").status_code == 200


def test_the_date_header_serves_when_there_is_no_ocp_date(batch, job):
    r = batch.get(f"/jobs/{job.job_id}", headers={"ocp-date": "", "Date": http_date()})
    assert r.status_code == 200


def test_ocp_date_wins_over_date(batch, job):
    r = batch.get(f"/jobs/{job.job_id}", headers={"Date": http_date(timedelta(hours=-2))})
    assert r.status_code == 200


def test_a_stale_date_header_is_refused(batch, job):
    r = batch.get(f"/jobs/{job.job_id}", headers={"ocp-date": "", "Date": http_date(timedelta(hours=-1))})
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_a_request_without_any_date_is_refused(batch, job):
    # UNCONFIRMED (REFERENCE §5/§15.13): 403 AuthenticationFailed for a missing date.
    r = batch.get(f"/jobs/{job.job_id}", headers={"ocp-date": ""})
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_an_unreadable_date_is_an_invalid_header(batch, job):
    r = batch.get(f"/jobs/{job.job_id}", headers={"ocp-date": "yesterday at noon"})
    assert (r.status_code, error_code(r)) == (400, "InvalidHeaderValue")


def test_a_request_without_authorization_is_refused(batch, job):
    # UNCONFIRMED (REFERENCE §5/§15.13): 403 AuthenticationFailed for a missing header.
    r = batch.get(f"/jobs/{job.job_id}", sign_request=False)
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "SharedKey", "SharedKey acct", "SharedKey acct:", "SharedKey :sig", "SharedKey a b:sig",
     "SharedKeyLite acct:sig", "sharedkey"],
)
def test_a_malformed_authorization_header_is_invalid_authentication_info(batch, job, header):
    r = batch.get(f"/jobs/{job.job_id}", sign_request=False, headers={"Authorization": header})
    assert (r.status_code, error_code(r)) == (400, "InvalidAuthenticationInfo")


def test_a_signature_that_is_not_base64_is_refused(batch, job):
    r = batch.get(f"/jobs/{job.job_id}", sign_request=False,
                  headers={"Authorization": f"SharedKey {batch.name}:***not-base64***"})
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def signed_client_for(account, signed_url: str, sent_url: str, method="GET"):
    date = http_date()
    auth = sign(method, signed_url, {"ocp-date": date}, account.name, account.primary_key)
    return Client().generic(method, sent_url, headers={"ocp-date": date, "Authorization": auth})


def test_a_signature_over_another_query_is_refused(account, job):
    r = signed_client_for(account, f"/jobs/{job.job_id}/tasks?api-version={API}&maxresults=1",
                          f"/jobs/{job.job_id}/tasks?api-version={API}&maxresults=2")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_a_signature_over_another_path_is_refused(account, job):
    other = JobFactory(account=account)
    r = signed_client_for(account, f"/jobs/{other.job_id}?api-version={API}", f"/jobs/{job.job_id}?api-version={API}")
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_a_signature_for_another_verb_is_refused(account, job):
    date = http_date()
    url = f"/jobs/{job.job_id}?api-version={API}"
    auth = sign("DELETE", url, {"ocp-date": date, "content-length": "0"}, account.name, account.primary_key)
    r = Client().generic("GET", url, headers={"ocp-date": date, "Authorization": auth})
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_the_documented_signature_variant_with_lowercased_parameter_names_is_accepted(account, job):
    # The REST docs' form: query names lowercased, several values sorted and comma-joined
    # (.NET and the CLI sign `timeOut` as `timeout`).
    url = f"/jobs/{job.job_id}/tasks?api-version={API}&timeOut=30"
    date = http_date()
    text = "GET\n" + "\n" * 11 + f"ocp-date:{date}\n/{account.name}{urlparse(url).path}"
    for name, values in sorted((k.lower(), v) for k, v in parse_qs(urlparse(url).query).items()):
        text += f"\n{name}:{','.join(sorted(values))}"
    digest = hmac.new(base64.b64decode(account.primary_key), text.encode(), hashlib.sha256).digest()
    auth = f"SharedKey {account.name}:{base64.b64encode(digest).decode()}"
    r = Client().get(url, headers={"ocp-date": date, "Authorization": auth})
    assert r.status_code == 200, r.content


def test_a_percent_encoded_path_is_verified_as_sent(batch):
    r = batch.get("/jobs/no%20such%20job/tasks")
    assert (r.status_code, error_code(r)) == (404, "JobNotFound")


def test_the_signature_covers_the_content_length_of_a_write(account, job):
    date = http_date()
    url = f"/jobs/{job.job_id}/tasks?api-version={API}"
    body = json.dumps({"id": "t1", "commandLine": "x"}).encode()
    headers = {"ocp-date": date, "content-type": "application/json", "content-length": str(len(body) + 1)}
    auth = sign("POST", url, headers, account.name, account.primary_key)
    r = Client().generic("POST", url, data=body, content_type="application/json",
                         headers={"ocp-date": date, "Authorization": auth})
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")
    assert not job.tasks.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/{job}"), ("PUT", "/jobs/{job}"),
        ("PATCH", "/jobs/{job}"), ("DELETE", "/jobs/{job}"), ("POST", "/jobs/{job}/terminate"),
        ("GET", "/jobs/{job}/taskcounts"), ("GET", "/jobs/{job}/tasks"), ("POST", "/jobs/{job}/tasks"),
        ("POST", "/jobs/{job}/addtaskcollection"), ("GET", "/jobs/{job}/tasks/{task}"),
        ("PUT", "/jobs/{job}/tasks/{task}"), ("DELETE", "/jobs/{job}/tasks/{task}"),
        ("POST", "/jobs/{job}/tasks/{task}/terminate"), ("POST", "/jobs/{job}/tasks/{task}/reactivate"),
        ("GET", "/jobs/{job}/tasks/{task}/subtasksinfo"), ("GET", "/pools"), ("POST", "/pools"),
        ("GET", "/pools/{pool}"), ("HEAD", "/pools/{pool}"), ("DELETE", "/pools/{pool}"),
        ("GET", "/pools/{pool}/nodes"), ("GET", "/pools/{pool}/nodes/n1"), ("GET", "/jobschedules"),
    ],
)
def test_every_operation_refuses_an_unsigned_request_and_changes_nothing(batch, method, path):
    task = TaskFactory(job=JobFactory(account=batch.account))
    pool = PoolFactory(account=batch.account)
    url = path.format(job=task.job.job_id, task=task.task_id, pool=pool.pool_id)
    r = batch.request(method, url, body={"id": "x"} if method in ("POST", "PUT", "PATCH") else None,
                      sign_request=False)
    assert r.status_code == 403
    if method != "HEAD":
        assert error_code(r) == "AuthenticationFailed"
    assert r["request-id"]
    task.refresh_from_db()
    assert task.state == "active" and task.job.state == "active" and Pool.objects.filter(pk=pool.pk).exists()
