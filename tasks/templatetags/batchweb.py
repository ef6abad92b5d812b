"""Small display helpers for the dashboard templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django import template
from django.utils import timezone

from tasks.wire.redaction import for_people

register = template.Library()


@register.filter
def duration(value: timedelta | None, empty: str = "—") -> str:
    """A timedelta as people read it: 350 ms, 4.2 s, 3m 05s, 2h 03m, 7d 0h."""
    if value is None:
        return empty
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {sec:02d}s"


@register.filter
def pretty(value) -> str:
    """JSON for people: indented, keys in their order, and never a secret or a SAS
    signature (tasks.wire.redaction.for_people): every specification a page shows as JSON
    comes through here."""
    return json.dumps(for_people(value), indent=2, ensure_ascii=False, default=str)


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def num(value) -> str:
    """1234567 -> 1,234,567 (and anything else unchanged)."""
    return f"{value:,}" if isinstance(value, int) else ("—" if value is None else str(value))


@register.filter
def split(value: str) -> list[str]:
    return value.split()


@register.filter
def minus(end, start) -> timedelta | None:
    """end - start, for run times in templates."""
    if end is None or start is None:
        return None
    return end - start


@register.filter
def bar_width(percent) -> str:
    """The class (`w-0` … `w-100`, static/css) that sizes a progress-bar segment: the
    site's Content-Security-Policy allows no inline `style=`. A share above zero is at
    least 1% wide, so it stays visible."""
    try:
        value = float(percent)
    except (TypeError, ValueError):
        return "w-0"
    whole = min(100, max(0, round(value)))
    return f"w-{max(whole, 1) if value > 0 else 0}"


@register.filter
def wire_time(value):
    """A time in its wire form (2026-12-01T10:00:00.0000000Z, as startTaskInfo and an
    autoscale run keep it) as a datetime for the `date` filter; anything else unchanged."""
    from django.utils.dateparse import parse_datetime

    if not isinstance(value, str):
        return value
    try:
        return parse_datetime(value) or value
    except ValueError:
        return value


@register.filter
def ago(value, empty: str = "—") -> str:
    """How long ago a time was, in whole seconds under a minute and as `duration` writes it
    after: "just now", "12 s ago", "3m 05s ago"."""
    if value is None:
        return empty
    seconds = (timezone.now() - value).total_seconds()
    if seconds < 1:
        return "just now"
    return (
        f"{int(seconds)} s ago" if seconds < 60 else f"{duration(timedelta(seconds=seconds))} ago"
    )


# The formats `at` writes, as the `date` filter spells them; static/js/time.js has the same
# names and writes them again in the zone the reader chose (their own, or UTC).
TIME_FORMATS = {
    "full": "%Y-%m-%d %H:%M:%S",
    "minute": "%Y-%m-%d %H:%M",
    "short": "%m-%d %H:%M:%S",
    "clock": "%H:%M:%S",
    "date": "%Y-%m-%d",
    "rel": "%Y-%m-%d %H:%M:%S",
}


@register.filter
def at(value, style: str = "full") -> str:
    """A moment as a `<time>` element: in UTC, labelled so, for a reader without JavaScript;
    static/js/time.js rewrites it in the reader's zone (or UTC, their choice) with the full
    date and both zones on hover. `rel` writes "3m 05s ago" instead, with the absolute time
    on hover and keyboard focus. Takes a datetime or a wire-form string (startTaskInfo);
    nothing for None, so `|default:"—"` still applies."""
    from django.utils.html import format_html

    moment = wire_time(value)
    if not isinstance(moment, datetime):
        return "" if moment in (None, "") else str(moment)
    moment = moment.astimezone(UTC) if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
    style = style if style in TIME_FORMATS else "full"
    absolute = moment.strftime(TIME_FORMATS[style]) + " UTC"
    stamp = (
        moment.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{moment.microsecond:06d}" if moment.microsecond else "")
        + "Z"
    )
    if style == "rel":
        return format_html(
            '<time class="rel" datetime="{}" data-fmt="rel" data-abs="{}" title="{}" tabindex="0">{}</time>',
            stamp,
            absolute,
            absolute,
            ago(moment),
        )
    return format_html(
        '<time datetime="{}" data-fmt="{}" title="{}">{}</time>',
        stamp,
        style,
        moment.strftime(TIME_FORMATS["full"]) + " UTC",
        absolute,
    )
