"""Shared fixtures. `batch` is a Django test client that signs every request with Shared
Key the way the SDKs do (an independent implementation of REFERENCE §5, so a bug in the
server's verifier cannot hide behind the same code on both sides)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json as jsonlib
import time
from email.utils import formatdate
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.test import Client

from tests.factories import AccountFactory, JobFactory

# `agents`: real `manage.py runnode` subprocesses against the test database;
# `local_provider`, `reconciler`: the real local node provider and a reconciler on it;
# `slurm`: the slurm node provider against a real Slurm (.ci/slurm-up), and its marker.
# `azurite`: real Blob storage (tests/storage/azurite.py) for resource and output files.
# `parallel`: a data dir per pytest-xdist worker, and the groups kept on one worker.
# `fast_settings`: test-only settings that cost less CPU (a fast password hasher).
pytest_plugins = [
    "tests.agents",
    "tests.local_nodes",
    "tests.slurm",
    "tests.storage.azurite",
    "tests.parallel",
    "tests.fast_settings",
]

API = "2025-06-01"
_STANDARD = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
]


def sign(method: str, url: str, headers: dict[str, str], account: str, key: str) -> str:
    parsed = urlparse(url)
    lowered = {k.lower(): v for k, v in headers.items()}
    text = method + "\n" + "\n".join(lowered.get(h, "") for h in _STANDARD) + "\n"
    for name, value in sorted((k, v) for k, v in lowered.items() if "ocp-" in k and v):
        text += f"{name}:{value}\n"
    text += f"/{account}{parsed.path}"
    query = parse_qs(parsed.query)
    for name in sorted(query):
        if query[name][0]:
            text += f"\n{name}:{query[name][0]}"
    digest = hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


class BatchTestClient:
    """Signed requests against the Batch API through Django's test client."""

    def __init__(self, account, *, key: str | None = None, name: str | None = None):
        self.account = account
        self.key = key or account.primary_key
        self.name = name or account.name
        self.client = Client()
        self.date_override: str | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body=None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        api_version: str | None = API,
        sign_request: bool = True,
    ):
        query = dict(params or {})
        if api_version is not None:
            query.setdefault("api-version", api_version)
        url = path + ("?" + urlencode(query) if query else "")
        data = (
            raw if raw is not None else (jsonlib.dumps(body).encode() if body is not None else b"")
        )
        hdrs = {
            "ocp-date": self.date_override or formatdate(usegmt=True),
            "client-request-id": "test-client-id",
        }
        hdrs.update(headers or {})
        content_type = "application/json; odata=minimalmetadata" if data else ""
        sign_headers = dict(hdrs)
        if method not in ("GET", "HEAD"):
            sign_headers["content-length"] = str(len(data))
        if content_type:
            sign_headers["content-type"] = content_type
        if sign_request:
            hdrs["Authorization"] = sign(method, url, sign_headers, self.name, self.key)
        extra = {}
        if method not in ("GET", "HEAD"):
            extra["CONTENT_LENGTH"] = str(len(data))
        return self.client.generic(
            method, url, data=data, content_type=content_type or "", headers=hdrs, **extra
        )

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session", autouse=True)
def _test_database_left_free(django_db_setup, django_db_blocker):
    """At the run's end no session but ours is left on the PostgreSQL test database, so that
    pytest-django can drop it: a live server's thread still serving a client's keep-alive
    connection (a browser's, an SDK client's) keeps its database session open, and the
    drop then failed ("is being accessed by other users"). Such sessions get two seconds
    to end, then are ended (pg_terminate_backend)."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    others = (
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def wait_until_alone(cursor, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        cursor.execute(others)
        while cursor.fetchall() and time.monotonic() < deadline:
            time.sleep(0.05)
            cursor.execute(others)

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        wait_until_alone(cursor, 2)
        cursor.execute(f"SELECT pg_terminate_backend(pid) FROM ({others}) AS left_open")
        wait_until_alone(cursor, 5)  # a terminated session takes a moment to end
    connection.close()


@pytest.fixture
def account(db):
    return AccountFactory()


@pytest.fixture
def batch(account):
    return BatchTestClient(account)


@pytest.fixture
def job(account):
    return JobFactory(account=account)


@pytest.fixture
def nodes_dir(settings, tmp_path):
    """Task and node files in a directory of the test's own (the `taskfiles` storage)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "nodes")},
        },
    }
    return tmp_path / "nodes"


def error_code(response) -> str:
    return jsonlib.loads(response.content)["code"]
