"""Middleware of our own: requests no view should see, and the site's Content-Security-Policy."""

from __future__ import annotations

from csp.middleware import CSPMiddleware

from tasks.api.handlers import not_found


def refuse_nul_in_path(get_response):
    """A NUL in the path names no resource, and PostgreSQL cannot even compare a string that
    holds one (a 500 from any lookup): answer it as an unknown path of its kind — the Batch
    `InvalidUri` error on API paths, the 404 page on the dashboard's — before any view runs."""

    def middleware(request):
        if "\x00" in request.path:
            return not_found(request)
        return get_response(request)

    return middleware


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, except for the API's JSON answers, which carry their own
    policy already (tasks.api.base.API_POLICY): django-csp would build the site's policy and its
    report-only twin for each of them, then drop both — a tenth of a Get Task's time."""

    def process_response(self, request, response):
        if getattr(response, "batch_api_policy", False):
            return response
        return super().process_response(request, response)
