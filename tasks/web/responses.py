"""How a dashboard view answers, the same way in every view: an htmx request gets the
fragment it swaps (a poll of a region where nothing can change any more gets it with 286,
so htmx stops polling), a plain request the whole page; after a POST, htmx follows a client
redirect and a plain request a 302."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

htmx_aware = vary_on_headers("HX-Request")


def fragment_or_page(request, page: str, fragment: str, context: dict, *, live: bool | None = None):
    """The fragment for htmx, the page otherwise; a poll of a finished region gets 286."""
    if request.htmx:
        if live is False and request.method == "GET":
            return stop_polling(request, fragment, context)
        return TemplateResponse(request, fragment, context)
    return TemplateResponse(request, page, context)


def stop_polling(request, fragment: str, context: dict):
    """The fragment, answered 286: htmx swaps it and polls no more."""
    response = HttpResponseStopPolling()
    response.content = render(request, fragment, context).content
    return response


def go(request, url: str):
    """After a POST: htmx follows with a client redirect, a plain request with a 302."""
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)
