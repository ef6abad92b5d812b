"""Django-level fallbacks: an unknown path or an unexpected failure still answers with a
Batch error body, never an HTML page."""

from tasks.errors import BatchError

from .errors import batch_error_response


def not_found(request, exception=None):
    if request.path.startswith(("/web/", "/accounts/", "/admin/", "/static/")) or request.path == "/":
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return batch_error_response(
        request, BatchError("InvalidUri", "The requested URI does not represent any resource on the server.", 400)
    )


def server_error(request):
    return batch_error_response(
        request, BatchError("InternalError", "Server encountered an internal error. Please try again after some time.", 500)
    )
