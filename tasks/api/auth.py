"""Shared Key authentication, exactly as both azure-batch SDK generations sign (REFERENCE §5).

Authorization: SharedKey <account>:<base64(HMAC-SHA256(base64decode(key), StringToSign))>
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, quote

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from tasks.errors import BatchError
from tasks.models import Account
from tasks.queries.accounts import get_account
from tasks.timefmt import parse_http_date

from . import tokens

SIGNED_HEADERS = (
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


def query_parameters(query: str) -> dict[str, str]:
    """The query parameters of a request as the server uses them, and as both signatures
    cover them: name (as sent) -> value. A name may appear once (names are compared
    case-insensitively, as the views read them), so no value can go unsigned behind a
    signed one; an empty value counts as absent, since the SDKs sign none. Raises 400
    InvalidQueryParameterValue for a name given more than once."""
    return dict(_parsed_query(query))


@functools.lru_cache(maxsize=256)
def _parsed_query(query: str) -> tuple[tuple[str, str], ...]:
    # Parsed once per request string, not once for the signature and again for the view;
    # a refusal raises and is not cached.
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name.lower() in seen:
            raise BatchError.invalid_query(
                name, value, "The query parameter is given more than once."
            )
        seen.add(name.lower())
        if value:
            params[name] = value
    return tuple(params.items())


def _header_lines(method: str, headers: dict[str, str], ocp: str) -> str:
    s = method + "\n" + "".join(headers.get(h, "") + "\n" for h in SIGNED_HEADERS)
    for name, value in sorted((k, v) for k, v in headers.items() if ocp_header(k, ocp) and v):
        s += f"{name}:{value}\n"
    return s


def ocp_header(name: str, how: str) -> bool:
    # The SDKs test "ocp-" as a substring of the name, the REST docs as a prefix.
    return name.startswith("ocp-") if how == "prefix" else "ocp-" in name


def string_to_sign(
    method: str, raw_path: str, params: dict[str, str], headers: dict[str, str], account: str
) -> str:
    """The SDKs' StringToSign: verb, 11 standard headers, ocp-* headers, path, then each
    parameter as `\nname:value`, names as sent and sorted case-sensitively."""
    s = _header_lines(method, headers, "substring") + f"/{account}{raw_path}"
    for name in sorted(params):
        s += f"\n{name}:{params[name]}"
    return s


def _documented_string_to_sign(
    method: str, raw_path: str, params: dict[str, str], headers: dict[str, str], account: str
) -> str:
    """The variant the REST docs describe (names lowercased and sorted), so clients other
    than the Python SDKs (.NET) authenticate too. query_parameters has refused a repeated
    name, so each has one value (the docs' comma-joined list of one)."""
    s = _header_lines(method, headers, "prefix") + f"/{account}{raw_path}"
    for name, value in sorted((k.lower(), v) for k, v in params.items()):
        s += f"\n{name}:{value}"
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


def check_content_md5(header: str, body: bytes) -> None:
    """Content-MD5 is signed and the body is not: when a client sends it, it is what binds
    the body to the signature. 400 InvalidHeaderValue when it is not a base64 MD5, 400
    Md5Mismatch when the body is not the one it describes."""
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != hashlib.md5().digest_size:
        raise BatchError.invalid_header("Content-MD5", header)
    if not hmac.compare_digest(digest, hashlib.md5(body).digest()):
        raise BatchError.md5_mismatch()


# HMAC keys no account has: an unknown account, or a missing secondary key, is checked
# against these, so every request costs the same HMACs whatever it names (an early answer
# would tell which account names exist). 64 bytes, the length of a Batch key.
_DUMMY_KEYS = (secrets.token_bytes(64), secrets.token_bytes(64))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _account_keys(account: Account | None) -> tuple[bytes, bytes]:
    """The account's primary and secondary key, a dummy where it has none (or none that
    decodes): always two keys, so the verification below costs the same for every name."""
    keys = []
    for i, text in enumerate((account.primary_key, account.secondary_key) if account else ("", "")):
        try:
            keys.append(base64.b64decode(text) if text else _DUMMY_KEYS[i])
        except (binascii.Error, ValueError):
            keys.append(_DUMMY_KEYS[i])
    return keys[0], keys[1]


def _signed_by(
    signature: str, texts: list[str], keys: tuple[bytes, bytes], real: tuple[bool, bool]
) -> bool:
    """Whether one of the real keys signed one of the texts, each compared in constant
    time. A refusal computes every HMAC, so it costs the same whatever the request names;
    a match stops there (the texts come most common first: the SDKs' form, primary key),
    which tells the key's holder only which accepted form they used."""
    sent = signature.encode()
    for text in texts:
        for key, is_real in zip(keys, real, strict=True):
            if hmac.compare_digest(base64.b64encode(_hmac(key, text)), sent) and is_real:
                return True
    return False


# Every request of one second carries the same date text: parse each once.
_request_date = functools.lru_cache(maxsize=64)(parse_http_date)


def authenticate_request(meta: dict, method: str) -> Account:
    """Return the account whose key signed this request, or raise the Batch refusal:
    403 AuthenticationFailed (bad or missing signature, unknown account, date outside the
    15-minute window), 400 InvalidAuthenticationInfo (malformed header), 400
    InvalidHeaderValue (unreadable date) or 400 InvalidQueryParameterValue (a query
    parameter given twice, which no signature could cover)."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise BatchError.authentication_failed("The Authorization header is missing.")
    m = _AUTH.match(header.strip())
    if not m:
        raise BatchError.invalid_authentication_info(
            "The Authorization header must be 'SharedKey <account>:<signature>'."
        )
    name, signature = m.groups()
    headers = request_headers(meta)
    date_text = headers.get("ocp-date") or headers.get("date")
    if not date_text:
        raise BatchError.authentication_failed("The request has no ocp-date or Date header.")
    try:
        sent = _request_date(date_text)
    except ValueError:
        raise BatchError.invalid_header(
            "ocp-date" if "ocp-date" in headers else "Date", date_text
        ) from None
    if abs(timezone.now() - sent) > DATE_WINDOW:
        raise BatchError.authentication_failed(
            "The request date is more than 15 minutes from the server's time."
        )
    params = query_parameters(meta.get("QUERY_STRING", ""))
    account = get_account(name)
    header_sets = [headers]
    if headers.get("content-type") == "text/plain":
        # wsgiref (Django's runserver and live server) invents `text/plain` for requests
        # that sent no Content-Type; the client signed an empty line.
        header_sets.append({k: v for k, v in headers.items() if k != "content-type"})
    texts = [
        builder(method, path, params, hdrs, name)
        for path in raw_path_candidates(meta)
        for builder in (string_to_sign, _documented_string_to_sign)
        for hdrs in header_sets
    ]
    real = (bool(account and account.primary_key), bool(account and account.secondary_key))
    if _signed_by(signature, texts, _account_keys(account), real):
        return account
    # The same answer for an unknown account as for a bad signature.
    raise BatchError.authentication_failed(
        "The MAC signature found in the HTTP request is not valid."
    )


class SharedKeyAuthentication(BaseAuthentication):
    """DRF authentication for every API view: Shared Key, a task's token (Bearer:
    tasks.api.tokens, limited to the token's job) or a Batch error."""

    def authenticate(self, request):
        meta = request._request.META
        if tokens.is_bearer(meta.get("HTTP_AUTHORIZATION", "")):
            match = request._request.resolver_match
            job_id = match.kwargs.get("job_id") if match is not None else None
            return ApiPrincipal(
                tokens.authenticate_token(meta["HTTP_AUTHORIZATION"], job_id=job_id)
            ), None
        account = authenticate_request(meta, request._request.method)
        return ApiPrincipal(account), None

    def authenticate_header(self, request):
        return "SharedKey"
