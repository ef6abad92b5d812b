"""Django-level fallbacks: an unknown path, a refused Host or an unexpected failure still
answers with a Batch error body on API paths, never an HTML page."""

from django.core.exceptions import DisallowedHost
from django.views import defaults

from tasks.errors import BatchError

from .errors import batch_error_response

_PAGE_PREFIXES = ("/web/", "/accounts/", "/admin/", "/static/")


def _is_page(request) -> bool:
    return request.path.startswith(_PAGE_PREFIXES) or request.path == "/"


def not_found(request, exception=None):
    if _is_page(request):
        return defaults.page_not_found(request, exception)
    return batch_error_response(request, BatchError.invalid_uri())


def bad_request(request, exception=None):
    if _is_page(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        error = BatchError.invalid_header("Host", request.META.get("HTTP_HOST", ""))
    else:
        error = BatchError("InvalidInput", "One of the request inputs is not valid.", 400)
    return batch_error_response(request, error)


def server_error(request):
    if _is_page(request):
        return defaults.server_error(request)
    return batch_error_response(
        request,
        BatchError(
            "InternalError",
            "Server encountered an internal error. Please try again after some time.",
            500,
        ),
    )
