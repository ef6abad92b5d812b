"""The base of every Batch API view: api-version, timeout, request ids, body parsing,
list envelopes and paging. Authentication is DRF's (tasks.api.auth)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
import uuid
from urllib.parse import quote, urlencode, urlsplit

from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.errors import BatchError
from tasks.queries.pager import BadCursor, Key, Order, Page
from tasks.timefmt import format_http_date

from .auth import check_content_md5, query_parameters
from .schema import SUPPORTED_API_VERSIONS, BatchAutoSchema

# The Content-Security-Policy of the API's JSON answers: nothing in one may load or run
# anything, should a browser ever render it (GitHub's API sends the same). Set here, so the
# site's policy is not built for them (tasks.middleware.ContentSecurityPolicy).
CSP_HEADER = "Content-Security-Policy"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"

DEFAULT_PAGE = 1000
MAX_BODY = 8 * 1024 * 1024
# After an early answer, this much of an unread body is read and dropped (within the time)
# so the connection can serve the next request; a larger body closes the connection.
DRAIN_LIMIT = 2 * MAX_BODY
DRAIN_SECONDS = 10.0
# WSGI environ key by which the application asks its server to close the connection after
# this answer (WSGI forbids the application a Connection header): batchsite.gunicorn_worker.
CLOSE_CONNECTION = "batchsite.close_connection"


def finish_request_body(request) -> None:
    """Read and drop what is left of the request body, once the answer is decided.

    An answer given before the body is read (a 413, a bad signature, a missing job) leaves
    the body on the connection. gunicorn then drains at most 64 KiB and closes a connection
    it had announced as keep-alive: the SDK's create_tasks, which halves a chunk after a 413
    and sends it on the same connection, failed with RemoteDisconnected. So up to
    DRAIN_LIMIT bytes (DRAIN_SECONDS) are read here; past that the connection is marked to
    close, which the answer then says (Connection: close).
    """
    meta = request.META
    if getattr(request, "_body", None) is not None:
        return  # read whole already (HttpRequest.body)
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = DRAIN_LIMIT + 1  # unknown: do not wait for it
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if declared > DRAIN_LIMIT:
        meta[CLOSE_CONNECTION] = True
        return
    # Django reads a body only up to its Content-Length; a chunked one only the server has.
    stream = meta.get("wsgi.input") if chunked else request
    if stream is None or (not chunked and declared == 0):
        return
    deadline, drained = time.monotonic() + DRAIN_SECONDS, 0
    try:
        while chunk := stream.read(64 * 1024):
            drained += len(chunk)
            if drained > DRAIN_LIMIT or time.monotonic() > deadline:
                meta[CLOSE_CONNECTION] = True
                return
    except (OSError, ValueError):
        meta[CLOSE_CONNECTION] = True  # the client went away or sent a broken body


# A $skiptoken is a cursor of the one pager (tasks.queries.pager): signed, so a garbled or
# invented one is refused (400) instead of read as "from the start" (a client following
# nextLinks would loop). Lists that are not read from the database (task files, supported
# images) continue after a string key, kept in the same format.
KEY_ORDER = Order.by(Key("key"))


def invalid_skiptoken(token: str) -> BatchError:
    return BatchError.invalid_query("$skiptoken", token, "The continuation token is not valid.")


# The path parts before a task's or node's file path: ids there never hold a "/", so an
# encoded one (%2F, which WSGI decodes) would make the path name another operation.
_FILE_PATH_START = re.compile(r"/(?:jobs/[^/]+/tasks/[^/]+|pools/[^/]+/nodes/[^/]+)/files/")


def encoded_slash_in_an_id(meta: dict) -> bool:
    """Whether the path as sent (the server's raw URI, when it gives one) holds an encoded
    slash outside a file path."""
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI") or ""
    path = urlsplit(raw).path if "://" in raw[:12] else raw.split("?", 1)[0]
    start = _FILE_PATH_START.match(path)
    if start:
        path = path[: start.end()]
    return "%2f" in path.lower()


MAX_BODY_DEPTH = 32  # Batch bodies nest about 6 deep; deeper would exhaust recursion later


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _unstorable(data) -> str | None:
    """What in a parsed body no database could store, or None: a NUL character or a lone
    surrogate in a string (PostgreSQL refuses both; UTF-8 cannot encode a surrogate), or
    nesting deeper than any Batch body."""
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            return f"values nested deeper than {MAX_BODY_DEPTH} levels"
        if isinstance(item, dict):
            texts = list(item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            texts = []
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            texts = [item]
        else:
            continue
        for text in texts:
            if "\x00" in text:
                return "a NUL character"
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    return "a lone surrogate character"
    return None


class BatchApiView(APIView):
    """One Batch path. Subclasses implement the HTTP methods the path has."""

    # No OPTIONS: Batch has none, and DRF's answer would describe our views, not Batch.
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]
    schema = BatchAutoSchema()

    def initial(self, request, *args, **kwargs):
        self.batch_request_id = str(uuid.uuid4())
        request._request.batch_request_id = self.batch_request_id
        if encoded_slash_in_an_id(request._request.META):
            raise BatchError.invalid_uri()  # as for any path that names no Batch resource
        super().initial(request, *args, **kwargs)  # authenticates: SharedKey on every call
        # Exactly the parameters the signature covered (tasks.api.auth.query_parameters).
        meta = request._request.META
        self.params = {
            k.lower(): v for k, v in query_parameters(meta.get("QUERY_STRING", "")).items()
        }
        if "HTTP_CONTENT_MD5" in meta:
            check_content_md5(meta["HTTP_CONTENT_MD5"], self.body_bytes())
        self.api_version = self._api_version()
        for name in ("timeout",):
            if name in self.params:
                try:
                    int(self.params[name])
                except ValueError:
                    raise BatchError.invalid_query(
                        "timeout", self.params[name], "timeout must be an integer"
                    ) from None

    def _api_version(self) -> str:
        version = self.params.get("api-version")  # parameter names are case-insensitive
        if version is None:
            raise BatchError.missing_query("api-version")
        if version not in SUPPORTED_API_VERSIONS:
            raise BatchError.invalid_query(
                "api-version",
                version,
                "Supported api-versions: " + ", ".join(SUPPORTED_API_VERSIONS),
            )
        return version

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        finish_request_body(request._request)
        rid = getattr(request._request, "batch_request_id", None) or str(uuid.uuid4())
        response["request-id"] = rid
        client_id = request._request.META.get("HTTP_CLIENT_REQUEST_ID")
        if client_id:
            response["client-request-id"] = client_id
        response["DataServiceVersion"] = "3.0"
        if isinstance(response, Response):  # JSON; file bytes keep their sandboxing policy
            response[CSP_HEADER] = API_POLICY
            response.batch_api_policy = True
        return response

    # --- helpers ------------------------------------------------------------------------

    @property
    def account(self):
        return self.request.user.account

    @functools.cached_property
    def base_url(self) -> str:
        # Once per request: building it validates the Host header against ALLOWED_HOSTS.
        return self.request.build_absolute_uri("/").rstrip("/")

    def body_bytes(self, limit: int = MAX_BODY) -> bytes:
        length = self.request._request.META.get("CONTENT_LENGTH") or "0"
        try:
            declared = int(length)
        except ValueError:
            raise BatchError.invalid_header("Content-Length", length) from None
        if declared > limit:
            raise BatchError.body_too_large(declared, limit)
        try:
            raw = self.request._request.body
        except RequestDataTooBig:
            raise BatchError.body_too_large(declared, limit) from None
        if len(raw) > limit:
            raise BatchError.body_too_large(len(raw), limit)
        return raw

    def json_body(self, *, limit: int = MAX_BODY, allow_empty: bool = False):
        raw = self.body_bytes(limit)
        if not raw.strip():
            if allow_empty:
                return {}
            raise BatchError.invalid_body("The request body is empty.")
        try:
            # Strict UTF-8 (json.loads of bytes would let encoded surrogates through) and
            # no NaN/Infinity, which no database's JSON can store.
            data = json.loads(raw.decode("utf-8-sig"), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise BatchError.invalid_body(f"The body is not valid JSON: {str(e)[:200]}") from None
        problem = _unstorable(data)
        if problem:
            raise BatchError.invalid_body(f"The body contains {problem}.")
        return data

    def select(self) -> list[str] | None:
        raw = self.params.get("$select")
        if not raw:
            return None
        return [p.strip() for p in raw.split(",") if p.strip()]

    def expand_stats(self) -> bool:
        raw = self.params.get("$expand")
        if not raw:
            return False
        parts = {p.strip().lower() for p in raw.split(",") if p.strip()}
        unknown = parts - {"stats"}
        if unknown:
            raise BatchError.invalid_query("$expand", raw, "Only stats can be expanded.")
        return True

    def page_size(self) -> int:
        raw = self.params.get("maxresults")
        if raw is None:
            return DEFAULT_PAGE
        try:
            value = int(raw)
        except ValueError:
            raise BatchError.invalid_query(
                "maxresults", raw, "maxresults must be an integer"
            ) from None
        if not 1 <= value <= 1000:
            raise BatchError.out_of_range_query(
                "maxresults", raw, "maxresults must be between 1 and 1000"
            )
        return value

    def skiptoken(self) -> str:
        """The $skiptoken as sent ("" for the first page), for a list query to read
        (tasks.queries.pager.page: a cursor that is not its own is a 400, handle_exception)."""
        return self.params.get("$skiptoken") or ""

    def after_key(self) -> str | None:
        """The string key a $skiptoken of a list not read from the database continues
        after, or 400 InvalidQueryParameterValue."""
        token = self.skiptoken()
        if not token:
            return None
        try:
            _, (key,) = KEY_ORDER.read(token)
        except BadCursor:
            raise invalid_skiptoken(token) from None
        return key

    def handle_exception(self, exc):
        if isinstance(exc, BadCursor):  # a list query refused the $skiptoken
            exc = invalid_skiptoken(self.skiptoken())
        return super().handle_exception(exc)

    def envelope(
        self,
        items: list[dict],
        *,
        metadata: str,
        page: Page | None = None,
        last_key: str | None = None,
        more: bool = False,
    ) -> Response:
        """The list envelope; the odata.nextLink continues after `page` (a page of the one
        pager), or after `last_key` when `more` (a list not read from the database)."""
        body = {"odata.metadata": f"{self.base_url}/$metadata#{metadata}", "value": items}
        if page is not None and page.next_cursor:
            body["odata.nextLink"] = self.next_link(page.next_cursor)
        elif page is None and more and last_key is not None:
            body["odata.nextLink"] = self.next_link(KEY_ORDER.cursor(0, {"key": last_key}))
        return Response(body)

    def next_link(self, cursor: str) -> str:
        """Absolute, carrying every parameter the query needs: 14.x requests it verbatim
        and 15.x re-adds none of the original parameters (REFERENCE §3)."""
        params = {"api-version": self.api_version}
        for name in ("$filter", "$select", "$expand", "maxresults", "recursive"):
            if self.params.get(name):
                params[name] = self.params[name]
        params["$skiptoken"] = cursor
        path = self.request._request.path
        return f"{self.base_url}{quote(path)}?{urlencode(params, quote_via=quote, safe='')}"

    @staticmethod
    def selected(item: dict, select: list[str] | None) -> dict:
        if not select:
            return item
        wanted = {s.lower() for s in select}
        return {k: v for k, v in item.items() if k.lower() in wanted}

    @staticmethod
    def collection_headers(response: Response, *, etags: list[str], last_modified) -> Response:
        """ETag and Last-Modified of a collection (a page of a list, the tasks a collection
        added), which the REST spec declares. `etags` names each member and its version
        ("id:etag"), so the ETag changes whenever a member changes, comes or goes."""
        digest = hashlib.sha256("\n".join(etags).encode()).hexdigest()[:16].upper()
        return BatchApiView.resource_headers(
            response, etag=f"0x{digest}", last_modified=last_modified
        )

    @staticmethod
    def resource_headers(
        response: Response, *, etag: str, last_modified, url: str | None = None
    ) -> Response:
        response["ETag"] = etag
        response["Last-Modified"] = format_http_date(last_modified)
        if url:
            response["DataServiceId"] = url
        return response

    def created(self, *, etag: str, last_modified, url: str) -> Response:
        """201 Created with the headers Add Job/Pool/Task answer with."""
        response = Response(None, status=201)
        response["Location"] = url
        return self.resource_headers(response, etag=etag, last_modified=last_modified, url=url)
