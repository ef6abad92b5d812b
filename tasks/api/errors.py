"""BatchError → the Batch error body (REFERENCE §10); every other failure too, so no
request ever gets an HTML page or a bare 500 from the API."""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.response import Response

from tasks.errors import BatchError
from tasks.timefmt import format_datetime_wire

from .renderers import CONTENT_TYPE

log = logging.getLogger(__name__)
ERROR_METADATA = "$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


def error_body(error: BatchError, request_id: str, base_url: str = "") -> dict:
    body = {
        "odata.metadata": f"{base_url}/{ERROR_METADATA}",
        "code": error.code,
        "message": {
            "lang": "en-US",
            "value": f"{error.message}\nRequestId:{request_id}\nTime:{format_datetime_wire(timezone.now())}",
        },
    }
    if error.values:
        body["values"] = [{"key": k, "value": v} for k, v in error.values]
    return body


def error_entry(error: BatchError, request_id: str) -> dict:
    """The BatchError embedded in an Add Collection result."""
    body = error_body(error, request_id)
    body.pop("odata.metadata")
    return body


def request_id_of(request) -> str:
    rid = getattr(request, "batch_request_id", None)
    if rid is None:
        rid = str(uuid.uuid4())
        try:
            request.batch_request_id = rid
        except AttributeError:
            pass
    return rid


def _as_batch_error(exc) -> BatchError | None:
    if isinstance(exc, BatchError):
        return exc
    if isinstance(exc, exceptions.MethodNotAllowed):
        return BatchError(
            "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.", 405
        )
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return BatchError.authentication_failed(str(exc.detail))
    if isinstance(exc, exceptions.ParseError):
        return BatchError.invalid_body(str(exc.detail))
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return BatchError("ResourceNotFound", "The specified resource does not exist.", 404)
    if isinstance(exc, exceptions.Throttled):
        return BatchError("ServerBusy", "The server is currently unable to receive requests.", 503)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is unreachable (restarting, failing over, a dropped connection) or
        # busy: the service is unavailable for now, not broken. The request's transaction
        # rolled back whole, and 503 is what both SDKs and the CLI retry as a transient
        # answer. Other database errors (integrity, data) remain bugs: 500 with a traceback.
        log.warning(
            "the database is unavailable: %s",
            str(exc).strip().splitlines()[0] if str(exc) else repr(exc),
        )
        return BatchError(
            "ServerBusy",
            "The server is currently unable to receive requests. Please retry your request.",
            503,
        )
    if isinstance(exc, exceptions.APIException):
        return BatchError("InvalidInput", str(exc.detail), exc.status_code)
    return None


def batch_exception_handler(exc, context):
    request = context.get("request")
    error = _as_batch_error(exc)
    if error is None:
        log.exception("unhandled error in the Batch API", exc_info=exc)
        error = BatchError(
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
            500,
        )
    rid = request_id_of(request)
    if error.status == 304:
        return Response(None, status=304)
    base = request.build_absolute_uri("/").rstrip("/") if request is not None else ""
    return Response(error_body(error, rid, base), status=error.status)


def batch_error_response(request, error: BatchError) -> JsonResponse:
    """A Batch error outside DRF (unknown path, Django-level failures)."""
    from .base import finish_request_body

    finish_request_body(request)  # answered before the body was read: keep the connection usable
    rid = str(uuid.uuid4())
    try:
        base = request.build_absolute_uri("/").rstrip("/")
    except DisallowedHost:  # the error being reported may be the Host itself
        base = ""
    response = JsonResponse(
        error_body(error, rid, base), status=error.status, content_type=CONTENT_TYPE
    )
    response["request-id"] = rid
    return response
