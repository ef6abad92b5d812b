"""The project's configuration of Django's own apps."""

from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


class AdminConfig(SimpleAdminConfig):
    """The Django admin, whose `admin.py` modules are imported with the URLconf that serves
    them (batchsite/urls.py), not at django.setup(): they import the API's serializers, DRF
    and the pool operations, which cost every process — every node agent at its start —
    0.3 s of CPU. Its system checks import them first, so `manage.py check` still checks
    every ModelAdmin."""

    def ready(self):
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_modules, checks.Tags.admin)


def check_admin_modules(app_configs, **kwargs):
    """Django's admin checks, on the ModelAdmins of every app's admin module."""
    from django.contrib.admin import autodiscover

    autodiscover()
    return check_admin_app(app_configs, **kwargs)
