"""gunicorn's threaded worker as batchsite serves the Batch API with it
(batchsite/gunicorn_conf.py selects it).

Two things plain gunicorn does not do for an API whose clients are the Batch SDKs:

- Close a connection when the application asks. WSGI forbids an application the
  Connection header, so after an answer whose request body was too large to drain
  (tasks.api.base.finish_request_body) the application sets CLOSE_CONNECTION in the
  environ, and this worker makes gunicorn say `Connection: close` and close.
- Answer a request gunicorn refuses to parse (a request line or headers over its limits, a
  malformed request) with a Batch error body, not gunicorn's HTML page.
"""

from __future__ import annotations

import json
import threading
import uuid

from gunicorn import util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import ThreadWorker

# (exception, HTTP status and reason phrase, Batch error code and message), first match wins.
_REFUSALS = [
    (
        LimitRequestLine,
        414,
        "URI Too Long",
        "RequestUrlFailedToParse",
        "The URL in the request could not be parsed.",
    ),
    (
        LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "InvalidInput",
        "One of the request inputs is not valid.",
    ),
    (
        (InvalidRequestLine, InvalidRequestMethod, InvalidHTTPVersion),
        400,
        "Bad Request",
        "RequestUrlFailedToParse",
        "The URL in the request could not be parsed.",
    ),
    (
        UnsupportedTransferCoding,
        501,
        "Not Implemented",
        "UnsupportedHeader",
        "One of the HTTP headers specified in the request is not supported.",
    ),
    (
        ExpectationFailed,
        417,
        "Expectation Failed",
        "InvalidHeaderValue",
        "The value for one of the HTTP headers is not in the correct format.",
    ),
    (ParseException, 400, "Bad Request", "InvalidInput", "One of the request inputs is not valid."),
]
# Parse errors that are the application's or the configuration's fault, not the client's.
_NOT_THE_CLIENTS = (InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem)


def batch_error_bytes(status: int, reason: str, code: str, message: str, detail: str) -> bytes:
    """A complete HTTP response carrying a Batch error body, closing the connection."""
    from tasks.api.errors import error_body
    from tasks.api.renderers import CONTENT_TYPE
    from tasks.errors import BatchError

    request_id = str(uuid.uuid4())
    body = json.dumps(
        error_body(BatchError(code, message, status, [("Reason", detail)]), request_id),
        separators=(",", ":"),
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\nrequest-id: {request_id}\r\nDataServiceVersion: 3.0\r\n\r\n"
    )
    return head.encode("latin-1") + body


class BatchThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._serving = threading.local()  # the request each worker thread is answering

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from tasks.api.base import CLOSE_CONNECTION

        app, serving = self.wsgi, self._serving

        def application(environ, start_response):
            def start(status, headers, exc_info=None):
                if environ.get(CLOSE_CONNECTION):
                    serving.request.must_close = True  # gunicorn then says Connection: close
                return start_response(status, headers, exc_info)

            return app(environ, start)

        self.wsgi = application

    def handle_request(self, req, conn):
        self._serving.request = req
        try:
            return super().handle_request(req, conn)
        finally:
            self._serving.request = None

    def handle_error(self, req, client, addr, exc):
        refusal = next((r for r in _REFUSALS if isinstance(exc, r[0])), None)
        if refusal is None or isinstance(exc, _NOT_THE_CLIENTS):
            return super().handle_error(req, client, addr, exc)
        _, status, reason, code, message = refusal
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            util.write_nonblock(client, batch_error_bytes(status, reason, code, message, str(exc)))
        except Exception:  # noqa: BLE001 - the client may be gone; as gunicorn does
            self.log.debug("Failed to send error message.")
