"""Responses that carry a task's or a node's file bytes, from the API or the dashboard.

A task writes whatever it likes, an HTML page or an SVG with a `<script>` included, and the
dashboard, the admin and the API share one origin. So every such response is sandboxed:
its own Content-Security-Policy (`sandbox; default-src 'none'`, through django-csp, in
place of the site-wide one) makes a browser treat it as a unique origin with no script, no
plugin, no form and no request of its own, and `X-Content-Type-Options: nosniff` keeps a
browser from reading bytes served as application/octet-stream as HTML. The dashboard also
serves them only as attachments (tasks.web.views.task_file).
"""

from __future__ import annotations

from functools import wraps

from csp.constants import NONE
from csp.decorators import csp

FILE_POLICY = {"default-src": [NONE], "sandbox": True}


def file_bytes(view):
    """Decorate a view (function or method) whose response carries file bytes."""
    with_policy = csp(FILE_POLICY)(view)

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = with_policy(*args, **kwargs)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    return wrapped
