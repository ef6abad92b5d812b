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
        "AuthenticationErrorDetail"
    ]


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
    r = batch.get(
        f"/jobs/{job.job_id}", headers={"ocp-date": "", "Date": http_date(timedelta(hours=-1))}
    )
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
    [
        "Bearer abc",
        "SharedKey",
        "SharedKey acct",
        "SharedKey acct:",
        "SharedKey :sig",
        "SharedKey a b:sig",
        "SharedKeyLite acct:sig",
        "sharedkey",
    ],
)
def test_a_malformed_authorization_header_is_invalid_authentication_info(batch, job, header):
    r = batch.get(f"/jobs/{job.job_id}", sign_request=False, headers={"Authorization": header})
    assert (r.status_code, error_code(r)) == (400, "InvalidAuthenticationInfo")


def test_a_signature_that_is_not_base64_is_refused(batch, job):
    r = batch.get(
        f"/jobs/{job.job_id}",
        sign_request=False,
        headers={"Authorization": f"SharedKey {batch.name}:***not-base64***"},
    )
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def signed_client_for(account, signed_url: str, sent_url: str, method="GET"):
    date = http_date()
    auth = sign(method, signed_url, {"ocp-date": date}, account.name, account.primary_key)
    return Client().generic(method, sent_url, headers={"ocp-date": date, "Authorization": auth})


def test_a_signature_over_another_query_is_refused(account, job):
    r = signed_client_for(
        account,
        f"/jobs/{job.job_id}/tasks?api-version={API}&maxresults=1",
        f"/jobs/{job.job_id}/tasks?api-version={API}&maxresults=2",
    )
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_a_signature_over_another_path_is_refused(account, job):
    other = JobFactory(account=account)
    r = signed_client_for(
        account, f"/jobs/{other.job_id}?api-version={API}", f"/jobs/{job.job_id}?api-version={API}"
    )
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")


def test_a_signature_for_another_verb_is_refused(account, job):
    date = http_date()
    url = f"/jobs/{job.job_id}?api-version={API}"
    auth = sign(
        "DELETE", url, {"ocp-date": date, "content-length": "0"}, account.name, account.primary_key
    )
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
    headers = {
        "ocp-date": date,
        "content-type": "application/json",
        "content-length": str(len(body) + 1),
    }
    auth = sign("POST", url, headers, account.name, account.primary_key)
    r = Client().generic(
        "POST",
        url,
        data=body,
        content_type="application/json",
        headers={"ocp-date": date, "Authorization": auth},
    )
    assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")
    assert not job.tasks.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/{job}"),
        ("PUT", "/jobs/{job}"),
        ("PATCH", "/jobs/{job}"),
        ("DELETE", "/jobs/{job}"),
        ("POST", "/jobs/{job}/terminate"),
        ("GET", "/jobs/{job}/taskcounts"),
        ("GET", "/jobs/{job}/tasks"),
        ("POST", "/jobs/{job}/tasks"),
        ("POST", "/jobs/{job}/addtaskcollection"),
        ("GET", "/jobs/{job}/tasks/{task}"),
        ("PUT", "/jobs/{job}/tasks/{task}"),
        ("DELETE", "/jobs/{job}/tasks/{task}"),
        ("POST", "/jobs/{job}/tasks/{task}/terminate"),
        ("POST", "/jobs/{job}/tasks/{task}/reactivate"),
        ("GET", "/jobs/{job}/tasks/{task}/subtasksinfo"),
        ("GET", "/pools"),
        ("POST", "/pools"),
        ("GET", "/pools/{pool}"),
        ("HEAD", "/pools/{pool}"),
        ("DELETE", "/pools/{pool}"),
        ("GET", "/pools/{pool}/nodes"),
        ("GET", "/pools/{pool}/nodes/n1"),
        ("GET", "/jobschedules"),
    ],
)
def test_every_operation_refuses_an_unsigned_request_and_changes_nothing(batch, method, path):
    task = TaskFactory(job=JobFactory(account=batch.account))
    pool = PoolFactory(account=batch.account)
    url = path.format(job=task.job.job_id, task=task.task_id, pool=pool.pool_id)
    r = batch.request(
        method,
        url,
        body={"id": "x"} if method in ("POST", "PUT", "PATCH") else None,
        sign_request=False,
    )
    assert r.status_code == 403
    if method != "HEAD":
        assert error_code(r) == "AuthenticationFailed"
    assert r["request-id"]
    task.refresh_from_db()
    assert (
        task.state == "active"
        and task.job.state == "active"
        and Pool.objects.filter(pk=pool.pk).exists()
    )


# --- what the signature covers is what the server uses (issue 8, item 3) --------------------


def replayed(account, method: str, signed_url: str, sent_url: str):
    """A request signed for `signed_url` (as the SDKs sign it) but sent to `sent_url`: what an
    attacker who captured the signature can do without the key."""
    date = http_date()
    signed = {"ocp-date": date}
    if method not in ("GET", "HEAD"):
        signed["content-length"] = "0"
    auth = sign(method, signed_url, signed, account.name, account.primary_key)
    extra = {"CONTENT_LENGTH": "0"} if method not in ("GET", "HEAD") else {}
    return Client().generic(
        method, sent_url, headers={"ocp-date": date, "Authorization": auth}, **extra
    )


@pytest.mark.parametrize(
    ("signed", "added"),
    [
        (
            "maxresults=1",
            "&maxresults=&maxresults=2",
        ),  # the SDKs sign the first value and skip empty ones
        ("maxresults=1", "&maxresults=2"),
        ("maxresults=1", "&MaxResults=2"),  # the views read names case-insensitively
        ("$filter=state%20eq%20%27completed%27", "&$filter=&$filter=state%20eq%20%27active%27"),
        ("maxresults=1", f"&api-version=&api-version={API}"),
    ],
)
def test_a_query_parameter_given_twice_is_refused_before_any_view_reads_it(
    account, job, signed, added
):
    TaskFactory(job=job, task_id="a")
    TaskFactory(job=job, task_id="b")
    url = f"/jobs/{job.job_id}/tasks?api-version={API}&{signed}"
    assert replayed(account, "GET", url, url).status_code == 200
    r = replayed(account, "GET", url, url + added)
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue"), r.content
    assert (
        "more than once"
        in dict((v["key"], v["value"]) for v in json.loads(r.content)["values"])["Reason"]
    )


def test_a_captured_delete_replayed_with_a_second_recursive_deletes_nothing(
    account, job, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    task = TaskFactory(
        job=job,
        task_id="T1",
        succeeded=True,
        node_name="n1",
        pool_id="p",
        task_root_directory=f"/x/n1/workitems/{job.job_id}/job-1/T1",
    )
    wd = tmp_path / account.name / "p" / "n1" / "workitems" / job.job_id / "job-1" / "T1" / "wd"
    (wd / "keep").mkdir(parents=True)
    (wd / "keep" / "data.txt").write_bytes(b"precious")
    url = f"/jobs/{job.job_id}/tasks/{task.task_id}/files/wd?api-version={API}"
    r = replayed(account, "DELETE", url, url)  # the captured, non-recursive delete
    assert (r.status_code, error_code(r)) == (409, "OperationInvalidForCurrentState")
    r = replayed(account, "DELETE", url, url + "&recursive=&recursive=true")
    assert r.status_code == 400, r.content
    assert (wd / "keep" / "data.txt").read_bytes() == b"precious"


def test_an_empty_parameter_is_ignored_as_the_sdks_leave_it_unsigned(account, job):
    TaskFactory(job=job, task_id="a", succeeded=True)
    TaskFactory(job=job, task_id="b")
    url = f"/jobs/{job.job_id}/tasks?api-version={API}"
    r = replayed(account, "GET", url, url + "&$filter=&maxresults=")
    assert r.status_code == 200, r.content
    assert [t["id"] for t in json.loads(r.content)["value"]] == ["a", "b"]


def md5_of(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_body_matching_its_content_md5_is_served(batch, job):
    body = json.dumps({"id": "t1", "commandLine": "/bin/true"}).encode()
    r = batch.post(f"/jobs/{job.job_id}/tasks", raw=body, headers={"Content-MD5": md5_of(body)})
    assert r.status_code == 201, r.content


def test_a_body_that_does_not_match_its_content_md5_is_refused_and_changes_nothing(batch, job):
    # Content-MD5 is signed and the body is not: the MD5 is what ties the body to the signature.
    signed_body = json.dumps({"id": "t1", "commandLine": "/bin/true"}).encode()
    sent_body = json.dumps({"id": "t2", "commandLine": "/bin/rm -"}).encode()
    assert len(signed_body) == len(sent_body)
    r = batch.post(
        f"/jobs/{job.job_id}/tasks", raw=sent_body, headers={"Content-MD5": md5_of(signed_body)}
    )
    assert (r.status_code, error_code(r)) == (400, "Md5Mismatch"), r.content
    assert not job.tasks.exists()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_content_md5_that_is_no_md5_is_an_invalid_header(batch, job, value):
    r = batch.post(
        f"/jobs/{job.job_id}/tasks",
        body={"id": "t1", "commandLine": "/bin/true"},
        headers={"Content-MD5": value},
    )
    assert (r.status_code, error_code(r)) == (400, "InvalidHeaderValue"), r.content
    assert not job.tasks.exists()


def test_an_unknown_account_costs_the_same_verification_as_a_wrong_key(account, job, monkeypatch):
    """Not a timing assertion: the unknown-account path must run the very same HMACs (same
    texts, as many keys) as a known account with a wrong key, so both answer in the same time."""
    from tasks.api import auth

    signed: list[tuple[str, bytes]] = []
    real = auth._hmac

    def spy(key: bytes, text: str) -> bytes:
        signed.append((text, key))
        return real(key, text)

    monkeypatch.setattr(auth, "_hmac", spy)
    wrong = base64.b64encode(b"not-the-key-of-this-account-0000").decode()
    single = AccountFactory(secondary_key="")
    runs = {}
    for label, client in (
        ("wrong key", BatchTestClient(account, key=wrong)),
        ("wrong key, no secondary", BatchTestClient(single, key=wrong)),
        ("unknown account", BatchTestClient(account, key=wrong, name="nosuchaccount")),
    ):
        signed.clear()
        r = client.get(f"/jobs/{job.job_id}")
        assert (r.status_code, error_code(r)) == (403, "AuthenticationFailed")
        # HMAC-SHA256 costs the same for every key up to its 64-byte block.
        runs[label] = (
            len(signed),
            len({text for text, _ in signed}),
            all(len(k) <= 64 for _, k in signed),
        )
    assert runs["wrong key"][0] > 0, "no signature was computed"
    assert runs["unknown account"] == runs["wrong key"] == runs["wrong key, no secondary"]
