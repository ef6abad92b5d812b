"""A system check for the vmSize table: a bad BATCHSITE_VM_SIZES stops `serve`, `reconcile`
and the other management commands at start (not `runnode`, which runs no checks), with the
entry named, instead of failing the first Add Pool."""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from .sizes import parse_table


@register()
def vm_size_table(app_configs, **kwargs):
    try:
        parse_table(settings.BATCHSITE_VM_SIZES)
    except ImproperlyConfigured as e:
        return [
            Error(str(e), hint="See the README: Pools and node providers.", id="batchsite.E101")
        ]
    return []
