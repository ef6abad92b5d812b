"""gunicorn's configuration for serving batchsite:

    gunicorn -c python:batchsite.gunicorn_conf batchsite.wsgi --bind 127.0.0.1:8000 --workers 2

Its worker (batchsite.gunicorn_worker) is gunicorn's threaded one, which also closes a
connection when the application asks (after an early answer to a body too large to drain)
and answers a request gunicorn cannot parse with a Batch error body instead of HTML.
Command-line options override what is set here.
"""

wsgi_app = "batchsite.wsgi:application"
worker_class = "batchsite.gunicorn_worker.BatchThreadWorker"
threads = 4
