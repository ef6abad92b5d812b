"""Reading the action buttons of a dashboard page: which are shown, and why each is disabled."""

from __future__ import annotations

import re
from html import unescape

_BLOCK = re.compile(
    r'<div class="action" data-action="([a-z-]+)">(.*?)</div>\s*(?=<div class="action"|</div>)',
    re.S,
)
_REASON = re.compile(r'<button class="btn" type="button" disabled title="([^"]*)">')


def buttons(body: str, region: str) -> dict[str, str]:
    """action -> its disabled reason ("" when enabled), for the buttons in `#<region>`."""
    start = body.index(f'id="{region}"')
    out = {}
    for action, block in _BLOCK.findall(body[start:]):
        if action in out:
            break
        found = _REASON.search(block)
        out[action] = unescape(found.group(1)) if found else ""
    return out
