"""What screen readers are pointed at exists: every aria-describedby, aria-labelledby and
aria-controls names ids that are on the page (Django points each form field with a help
text or an error at `<id>_helptext` / `<id>_error`), and the sorted column of a task list
says which way it is sorted (aria-sort)."""

import re

import pytest
from django.urls import reverse

from tests.factories import PoolFactory, TaskFactory
from tests.web.conftest import job_url, task_url

pytestmark = pytest.mark.django_db

REFERENCE = re.compile(r'\saria-(describedby|labelledby|controls)="([^"]*)"')


def dangling(html: str) -> list[str]:
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    return [
        f"aria-{kind}={ref}"
        for kind, refs in REFERENCE.findall(html)
        for ref in refs.split()
        if ref not in ids
    ]


@pytest.fixture
def forms(job):
    PoolFactory(account=job.account, pool_id="p1")
    return {"task": TaskFactory(job=job, task_id="t1")}


def form_pages(job, task) -> list[tuple[str, dict | None]]:
    pool = lambda name: reverse(f"web:{name}", args=[job.account.name, "p1"])  # noqa: E731
    return [
        (job_url("task-add", job), None),
        (job_url("task-add", job), {"task_id": "bad id!", "command_line": ""}),
        (task_url("task-update", task), None),
        (task_url("task-update", task), {"max_wall_clock_time": "soon"}),
        (pool("pool-resize"), None),
        (pool("pool-resize"), {"target_dedicated_nodes": "-3"}),
        (pool("pool-enable-autoscale"), None),
        (pool("pool-enable-autoscale"), {"formula": ""}),
        (pool("pool-evaluate-autoscale"), None),
    ]


def test_every_aria_reference_of_a_form_points_at_something(op, job, forms):
    checked = 0
    for url, data in form_pages(job, forms["task"]):
        html = (op.post(url, data) if data is not None else op.get(url)).content.decode()
        assert dangling(html) == [], url
        checked += len(REFERENCE.findall(html))
    assert checked > 10  # the forms do point at their help texts and errors


def test_a_form_field_is_described_by_its_help_text_and_its_error(op, job, forms):
    html = op.post(
        job_url("task-add", job), {"task_id": "bad id!", "command_line": "x"}
    ).content.decode()
    field = re.search(r'<input[^>]*name="task_id"[^>]*>', html).group(0)
    assert 'aria-describedby="id_task_id_helptext id_task_id_error"' in field
    assert 'id="id_task_id_helptext"' in html and 'id="id_task_id_error"' in html


@pytest.mark.parametrize(
    "sort, header, order",
    [
        ("", "ID", "ascending"),
        ("-exit_code", "Exit code", "descending"),
        ("ended", "Ended", "ascending"),
    ],
)
def test_the_sorted_column_says_how_it_is_sorted_and_only_it(op, job, forms, sort, header, order):
    html = op.get(job_url("job", job, **({"sort": sort} if sort else {}))).content.decode()
    sorted_headers = re.findall(r'<th[^>]*aria-sort="(\w+)"[^>]*><a[^>]*>([^<]+)', html)
    assert sorted_headers == [(order, header + " ")]
