"""Settings of the API throughput benchmark's server: batchsite's own, with one more route,
a bare Django JSON view (benchmarks/_bare_urls.py) to measure the API against in the same
run. Only the benchmark selects them (DJANGO_SETTINGS_MODULE=_bare_settings with
benchmarks/ on gunicorn's --pythonpath), so the view is never reachable in production."""

from batchsite.settings import *  # noqa: F403

ROOT_URLCONF = "_bare_urls"
