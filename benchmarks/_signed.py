"""Signed Batch requests with the standard library, for the soak run and the API throughput
benchmark: Shared Key as both azure-batch SDKs sign (REFERENCE §5), over a keep-alive
connection, with nothing else in the way (no retries unless the caller asks, every answer
seen). No Django: the drivers run without settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from email.utils import formatdate
from urllib.parse import quote, urlencode

API_VERSION = "2025-06-01"
STANDARD_HEADERS = (
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
)
JSON_TYPE = "application/json; odata=minimalmetadata"


def query_string(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote, safe="")


def authorization(
    method: str, path: str, params: dict[str, str], headers: dict[str, str], account: str, key: str
) -> str:
    """The Authorization header: the 11 standard headers, the ocp-* ones, the path and each
    parameter (names as sent, sorted), HMAC-SHA256 with the base64 key."""
    lowered = {k.lower(): v for k, v in headers.items()}
    text = method + "\n" + "".join(lowered.get(h, "") + "\n" for h in STANDARD_HEADERS)
    for name, value in sorted((k, v) for k, v in lowered.items() if "ocp-" in k and v):
        text += f"{name}:{value}\n"
    text += f"/{account}{path}"
    for name in sorted(params):
        if params[name]:
            text += f"\n{name}:{params[name]}"
    digest = hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


def signed_request(
    method: str,
    path: str,
    *,
    account: str,
    key: str,
    params: dict[str, str] | None = None,
    body=None,
) -> tuple[str, bytes, dict[str, str]]:
    """(url, body bytes, headers) of one signed request, dated now (valid 15 minutes)."""
    params = {"api-version": API_VERSION, **(params or {})}
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"ocp-date": formatdate(usegmt=True)}
    if method not in ("GET", "HEAD"):
        headers["content-length"] = str(len(data))
    if data:
        headers["content-type"] = JSON_TYPE
    headers["Authorization"] = authorization(method, quote(path), params, headers, account, key)
    return f"{quote(path)}?{query_string(params)}", data, headers


class Answer:
    """One HTTP exchange: its status (0: no answer), the body, the time it took, and the
    error when there was no answer."""

    __slots__ = ("status", "body", "seconds", "error", "sent_at")

    def __init__(
        self, status: int, body: bytes, seconds: float, error: str = "", sent_at: float = 0.0
    ) -> None:
        self.status, self.body, self.seconds, self.error, self.sent_at = (
            status,
            body,
            seconds,
            error,
            sent_at,
        )

    def json(self):
        try:
            return json.loads(self.body) if self.body else {}
        except ValueError:
            return {}

    @property
    def code(self) -> str:
        """The Batch error code of an error answer."""
        data = self.json()
        return data.get("code", "") if isinstance(data, dict) else ""


class Connection:
    """One keep-alive connection to batchsite, reopened after any error."""

    def __init__(
        self, port: int, *, account: str, key: str, host: str = "127.0.0.1", timeout: float = 60
    ) -> None:
        self.host, self.port, self.account, self.key, self.timeout = (
            host,
            port,
            account,
            key,
            timeout,
        )
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body=None
    ) -> Answer:
        url, data, headers = signed_request(
            method, path, account=self.account, key=self.key, params=params, body=body
        )
        sent_at = time.monotonic()
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.request(method, url, body=data or None, headers=headers)
            response = self._conn.getresponse()
            raw = response.read()
            if response.getheader("connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return Answer(0, b"", time.perf_counter() - started, type(e).__name__, sent_at)
        return Answer(response.status, raw, time.perf_counter() - started, "", sent_at)
