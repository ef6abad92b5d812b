"""batchsite's routes plus `/bare`: a plain Django view returning a small JSON object,
through the same middleware, worker and gunicorn configuration as the API (the
benchmark's baseline; see _bare_settings.py)."""

from django.http import JsonResponse
from django.urls import include, path

from batchsite.urls import handler400, handler404, handler500  # noqa: F401 - the root URLconf's handlers


def bare(request):
    return JsonResponse({"id": "bare", "state": "active", "value": list(range(10))})


urlpatterns = [path("bare", bare), path("", include("batchsite.urls"))]
