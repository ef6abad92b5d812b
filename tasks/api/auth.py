"""Shared Key authentication, exactly as both azure-batch SDK generations sign (REFERENCE §5).

Authorization: SharedKey <account>:<base64(HMAC-SHA256(base64decode(key), StringToSign))>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, quote

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from tasks.errors import BatchError
from tasks.models import Account
from tasks.timefmt import parse_http_date

SIGNED_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type",
    "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)
DATE_WINDOW = timedelta(minutes=15)
_AUTH = re.compile(r"^SharedKey ([^:\s]+):(\S+)$")


@dataclass
class ApiPrincipal:
    """The authenticated caller of an API request: one Batch account."""

    account: Account
    is_authenticated: bool = True


def request_headers(meta: dict) -> dict[str, str]:
    """Lowercased request headers from a WSGI environ (Content-Type/-Length included)."""
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    if meta.get("CONTENT_TYPE"):
        headers["content-type"] = meta["CONTENT_TYPE"]
    if meta.get("CONTENT_LENGTH"):
        headers["content-length"] = meta["CONTENT_LENGTH"]
    return headers


def string_to_sign(method: str, raw_path: str, query: str, headers: dict[str, str], account: str) -> str:
    """The SDKs' StringToSign: verb, 11 standard headers, ocp-* headers, path, query."""
    s = method + "\n" + "".join(headers.get(h, "") + "\n" for h in SIGNED_HEADERS)
    for name, value in sorted((k, v) for k, v in headers.items() if "ocp-" in k and v):
        s += f"{name}:{value}\n"
    s += f"/{account}{raw_path}"
    params = parse_qs(query, keep_blank_values=True)
    for name in sorted(params):
        if params[name][0]:
            s += f"\n{name}:{params[name][0]}"
    return s


def _documented_string_to_sign(method: str, raw_path: str, query: str, headers: dict[str, str], account: str) -> str:
    """The variant the REST docs describe (lowercased names, multiple values joined), so
    clients other than the Python SDKs (.NET, the CLI) authenticate too."""
    s = method + "\n" + "".join(headers.get(h, "") + "\n" for h in SIGNED_HEADERS)
    for name, value in sorted((k, v) for k, v in headers.items() if k.startswith("ocp-") and v):
        s += f"{name}:{value}\n"
    s += f"/{account}{raw_path}"
    params: dict[str, list[str]] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        params.setdefault(name.lower(), []).extend(values)
    for name in sorted(params):
        s += f"\n{name}:{','.join(sorted(params[name]))}"
    return s


def raw_path_candidates(meta: dict) -> list[str]:
    """The request path as the client sent it, still percent-encoded. WSGI decodes
    PATH_INFO, so without the server's raw URI re-quote it: per segment, and with the
    file-path remainder (`.../files/<path>`) quoted whole, as the SDKs send it."""
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw:
        return [raw.split("?", 1)[0]]
    path = meta.get("PATH_INFO", "")
    try:
        path = path.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        pass
    segments = path.split("/")
    candidates = ["/".join(quote(seg, safe="") for seg in segments)]
    m = re.match(r"^(/jobs/[^/]+/tasks/[^/]+/files/|/pools/[^/]+/nodes/[^/]+/files/)(.+)$", path)
    if m:
        candidates.insert(0, m.group(1) + quote(m.group(2), safe=""))
    return candidates


def _sign(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()).decode()


def authenticate_request(meta: dict, method: str) -> Account:
    """Return the account whose key signed this request, or raise the Batch refusal:
    403 AuthenticationFailed (bad or missing signature, unknown account, date outside the
    15-minute window) or 400 InvalidAuthenticationInfo (malformed header)."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise BatchError.authentication_failed("The Authorization header is missing.")
    m = _AUTH.match(header.strip())
    if not m:
        raise BatchError.invalid_authentication_info("The Authorization header must be 'SharedKey <account>:<signature>'.")
    name, signature = m.groups()
    headers = request_headers(meta)
    date_text = headers.get("ocp-date") or headers.get("date")
    if not date_text:
        raise BatchError.authentication_failed("The request has no ocp-date or Date header.")
    try:
        sent = parse_http_date(date_text)
    except ValueError:
        raise BatchError.invalid_header("ocp-date" if "ocp-date" in headers else "Date", date_text) from None
    if abs(timezone.now() - sent) > DATE_WINDOW:
        raise BatchError.authentication_failed("The request date is more than 15 minutes from the server's time.")
    account = Account.objects.filter(name=name).first()
    if account is None:
        # Same answer as a bad signature: do not reveal which account names exist.
        raise BatchError.authentication_failed("The MAC signature found in the HTTP request is not valid.")
    query = meta.get("QUERY_STRING", "")
    header_sets = [headers]
    if headers.get("content-type") == "text/plain":
        # wsgiref (Django's runserver and live server) invents `text/plain` for requests
        # that sent no Content-Type; the client signed an empty line.
        header_sets.append({k: v for k, v in headers.items() if k != "content-type"})
    for path in raw_path_candidates(meta):
        for builder, hdrs in ((b, h) for b in (string_to_sign, _documented_string_to_sign) for h in header_sets):
            text = builder(method, path, query, hdrs, account.name)
            for key in (account.primary_key, account.secondary_key):
                if not key:
                    continue
                try:
                    expected = _sign(key, text)
                except (binascii.Error, ValueError):
                    continue
                if hmac.compare_digest(expected.encode(), signature.encode()):
                    return account
    raise BatchError.authentication_failed("The MAC signature found in the HTTP request is not valid.")


class SharedKeyAuthentication(BaseAuthentication):
    """DRF authentication for every API view: Shared Key or a Batch error."""

    def authenticate(self, request):
        account = authenticate_request(request._request.META, request._request.method)
        return ApiPrincipal(account), None

    def authenticate_header(self, request):
        return "SharedKey"
