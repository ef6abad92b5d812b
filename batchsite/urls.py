from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView

from tasks.api import schema  # noqa: F401 - registers the Shared Key scheme with drf-spectacular
from tasks.api.handlers import bad_request, not_found, server_error

# The admin modules are imported here, with the URLconf, not by every process at start
# (batchsite.apps.AdminConfig).
admin.autodiscover()

urlpatterns = [
    # The Batch paths first: every API call resolves its route, and none of them can match a
    # page's path (they begin with a Batch collection, the pages with admin/, web/, accounts/).
    path("", include("tasks.api.urls")),
    path("admin/", admin.site.urls),
    path("web/", include("tasks.web.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", RedirectView.as_view(pattern_name="web:jobs", permanent=False), name="home"),
    # Browsers ask for /favicon.ico whatever the page says; it is not a Batch path.
    path(
        "favicon.ico",
        RedirectView.as_view(url=f"/{settings.STATIC_URL.lstrip('/')}favicon.svg", permanent=True),
    ),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
]

handler400 = bad_request
handler404 = not_found
handler500 = server_error
