"""CSV export of everything a filter matches, streamed in keyset chunks."""

import csv
import io

import pytest

from tasks.web import pages
from tests.factories import TaskFactory
from tests.web.conftest import job_url

pytestmark = pytest.mark.django_db


def rows(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_exports_every_matching_task_across_chunks(op, job, monkeypatch):
    monkeypatch.setattr(pages, "CSV_CHUNK", 3)
    for i in range(8):
        TaskFactory.build(
            job=job, task_id=f"t{i}", state="completed", result="failure", exit_code=i % 2
        ).save()
    TaskFactory(job=job, task_id="other")
    got = rows(op.get(job_url("job-export", job, exit_code="1", sort="-id")))
    assert got[0][:4] == ["id", "state", "result", "exit_code"]
    assert [r[0] for r in got[1:]] == ["t7", "t5", "t3", "t1"]


def test_a_viewer_may_export(view, job):
    TaskFactory(job=job, task_id="x1", failed=True)
    r = view.get(job_url("job-export", job))
    assert r["Content-Disposition"] == f'attachment; filename="{job.job_id}-tasks.csv"'
    assert rows(r)[1][:5] == ["x1", "completed", "failure", "1", "FailureExitCode"]


@pytest.mark.parametrize(
    "bad", [{"since": "0001-01-01T00:00:00+14:00"}, {"since": "99999-01-01"}, {"exit_code": "1,x"}]
)
def test_a_filter_with_an_error_is_refused_before_the_stream_starts(op, job, bad):
    TaskFactory(job=job, task_id="never-exported", failed=True)
    r = op.get(job_url("job-export", job, **bad))
    assert r.status_code == 400 and not r.streaming and r["Content-Type"].startswith("text/html")
    body = r.content.decode()
    assert (
        'id="export-refused"' in body
        and "Correct the filter" in body
        and "never-exported" not in body
    )
