"""After an answer given before the body was read, the body is read and dropped (up to
DRAIN_LIMIT) so the connection can serve the next request, or the connection is marked to
close (issue 8, item 10; the connections themselves are tested through gunicorn in
tests/sdk/test_gunicorn_connections.py)."""

import json

import pytest

from tasks.api.base import CLOSE_CONNECTION, DRAIN_LIMIT
from tests.conftest import error_code

pytestmark = pytest.mark.django_db

COLLECTION_OVER_1MB = json.dumps(
    {"value": [{"id": f"t{i}", "commandLine": "x" * 12_000} for i in range(100)]}
).encode()


@pytest.mark.parametrize(
    ("path", "sign", "status"),
    [
        ("/jobs/{job}/addtaskcollection", True, 413),  # refused on its declared length
        ("/jobs/nosuch/addtaskcollection", True, 404),  # refused before the body is read
        ("/jobs/{job}/addtaskcollection", False, 403),  # refused before anything is read
        ("/nosuch/path", True, 400),  # no API view at all
    ],
)
def test_an_early_answer_leaves_no_body_on_the_connection(batch, job, path, sign, status):
    r = batch.post(path.format(job=job.job_id), raw=COLLECTION_OVER_1MB, sign_request=sign)
    assert r.status_code == status, r.content[:300]
    assert r.wsgi_request.read() == b"", "the rest of the body is still unread"
    assert CLOSE_CONNECTION not in r.wsgi_request.META


def test_a_body_too_large_to_drain_marks_the_connection_to_close(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/addtaskcollection", raw=b"{" + b" " * DRAIN_LIMIT + b"}")
    assert (r.status_code, error_code(r)) == (413, "RequestBodyTooLarge")
    assert r.wsgi_request.META[CLOSE_CONNECTION] is True


def test_a_body_that_was_read_is_not_read_again(batch, job):
    r = batch.post(f"/jobs/{job.job_id}/tasks", {"id": "t1", "commandLine": "x"})
    assert r.status_code == 201 and CLOSE_CONNECTION not in r.wsgi_request.META
