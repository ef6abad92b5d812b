"""If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since (REFERENCE §4).

`check_read` answers a GET/HEAD (304 or 412); `write_precondition` returns the callable
an operation runs on the locked row, so the check and the write are one atomic step.
"""

from __future__ import annotations

from collections.abc import Callable

from tasks.errors import BatchError
from tasks.timefmt import parse_http_date

_HEADERS = {
    "if-match": "HTTP_IF_MATCH",
    "if-none-match": "HTTP_IF_NONE_MATCH",
    "if-modified-since": "HTTP_IF_MODIFIED_SINCE",
    "if-unmodified-since": "HTTP_IF_UNMODIFIED_SINCE",
}


def _normalize(tag: str) -> str:
    tag = tag.strip()
    tag = tag.removeprefix("W/")
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    return tag


def _tags_match(header: str, etag: str) -> bool:
    wanted = [_normalize(t) for t in header.split(",")]
    return "*" in wanted or _normalize(etag) in wanted


def _conditions(meta: dict) -> dict[str, str]:
    present = {name: meta[key] for name, key in _HEADERS.items() if meta.get(key)}
    if len(present) > 1:
        allowed = ({"if-none-match", "if-modified-since"}, {"if-match", "if-unmodified-since"})
        if set(present) not in allowed:
            raise BatchError.multiple_condition_headers()
        # The ETag condition wins over the date condition paired with it.
        present.pop("if-modified-since", None)
        present.pop("if-unmodified-since", None)
    for name in ("if-modified-since", "if-unmodified-since"):
        if name in present:
            try:
                parse_http_date(present[name])
            except ValueError:
                raise BatchError.invalid_header(name, present[name]) from None
    return present


def _met(name: str, value: str, etag: str, last_modified) -> bool:
    if name == "if-match":
        return _tags_match(value, etag)
    if name == "if-none-match":
        return not _tags_match(value, etag)
    since = parse_http_date(value)
    modified = last_modified.replace(microsecond=0)
    if name == "if-modified-since":
        return modified > since
    return modified <= since  # if-unmodified-since


def check_read(meta: dict, resource, *, dates_only: bool = False) -> None:
    """Raise 304 (If-None-Match / If-Modified-Since) or 412 (If-Match /
    If-Unmodified-Since) ConditionNotMet when a read's condition is not met."""
    for name, value in _conditions(meta).items():
        if dates_only and name in ("if-match", "if-none-match"):
            continue
        if not _met(name, value, getattr(resource, "etag", ""), resource.last_modified):
            raise BatchError.condition_not_met(
                304 if name in ("if-none-match", "if-modified-since") else 412
            )


def write_precondition(meta: dict) -> Callable[[object], None] | None:
    """The check for a write: any unmet condition is 412 ConditionNotMet. Header errors
    (400) are raised now, before any lock is taken."""
    conditions = _conditions(meta)
    if not conditions:
        return None

    def check(resource) -> None:
        for name, value in conditions.items():
            if not _met(name, value, resource.etag, resource.last_modified):
                raise BatchError.condition_not_met(412)

    return check
