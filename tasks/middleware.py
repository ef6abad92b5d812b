"""Requests no view should see."""

from __future__ import annotations

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
