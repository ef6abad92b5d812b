from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

from tasks.api.handlers import not_found, server_error

urlpatterns = [
    path("admin/", admin.site.urls),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    path("", include("tasks.api.urls")),
]

handler404 = not_found
handler500 = server_error
