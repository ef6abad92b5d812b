"""A job's task list: server-side filter, sort and keyset paging, live refresh that stops,
the filter in the URL, and the exact count on demand."""

import re

import pytest

from tasks.models import Job
from tests.factories import BulkOperationFactory, JobFactory, MembershipFactory, TaskFactory
from tests.web.conftest import HTMX, job_url, signed_in

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    return re.findall(r'<tr data-task="([^"]+)"', response.content.decode())


@pytest.fixture
def tasks(job):
    TaskFactory(job=job, task_id="a-ok", succeeded=True, node_name="n1")
    TaskFactory(
        job=job,
        task_id="b-137",
        failed=True,
        exit_code=137,
        node_name="n2",
        failure_info={"category": "usererror", "code": "FailureExitCode", "message": "x"},
    )
    TaskFactory(job=job, task_id="c-1", failed=True, node_name="n1")
    TaskFactory(job=job, task_id="d-run", running=True, node_name="n2")
    TaskFactory(job=job, task_id="e-wait")
    return job


@pytest.mark.parametrize(
    "query, expected",
    [
        ("state=completed", ["a-ok", "b-137", "c-1"]),
        ("result=failure", ["b-137", "c-1"]),
        ("exit_code=137", ["b-137"]),
        ("exit_code=1..200", ["b-137", "c-1"]),
        ("failure_code=FailureExitCode", ["b-137", "c-1"]),
        ("node=n2", ["b-137", "d-run"]),
        ("q=RU", ["d-run"]),
        ("state=active", ["e-wait"]),
    ],
)
def test_filters_on_the_server(op, tasks, query, expected):
    assert ids(op.get(job_url("job", tasks) + "?" + query)) == expected


def test_sorts_by_exit_code_descending_with_no_code_last(op, tasks):
    assert ids(op.get(job_url("job", tasks, sort="-exit_code"))) == [
        "b-137",
        "c-1",
        "a-ok",
        "e-wait",
        "d-run",
    ]


def test_pages_over_the_whole_job_with_next_and_previous(op, job):
    for i in range(120):
        TaskFactory.build(job=job, task_id=f"t{i:03d}").save()
    first = op.get(job_url("job", job))
    assert ids(first)[:2] == ["t000", "t001"] and len(ids(first)) == 50
    after = re.search(r'after=([\w-]+)" rel="next"', first.content.decode()).group(1)
    second = op.get(job_url("job", job, after=after))
    assert ids(second)[0] == "t050"
    before = re.search(r'before=([\w-]+)" rel="prev"', second.content.decode()).group(1)
    assert ids(op.get(job_url("job", job, before=before))) == ids(first)


def test_the_filter_lives_in_the_url_and_in_every_link(op, tasks):
    body = op.get(job_url("job", tasks, state="completed", sort="-ended")).content.decode()
    assert 'value="completed" selected' in body
    assert "export.csv?state=completed&amp;sort=-ended" in body
    assert "action=reactivate&amp;state=completed&amp;sort=-ended" in body


def test_a_bad_filter_value_is_shown_at_its_field_and_lists_nothing(op, tasks):
    r = op.get(job_url("job", tasks, exit_code="abc", node="n1"))
    body = r.content.decode()
    assert r.status_code == 200 and ids(r) == []
    assert (
        "Exit code: Exit codes are whole numbers or ranges like 1..255, not &#x27;abc&#x27;."
        in body
    )
    assert 'name="exit_code" value="abc" placeholder="137 or 1..255" aria-invalid="true"' in body
    # Nothing widens the scope: export and every "all" action are off, links keep the error.
    assert "export.csv?" not in body and body.count('disabled title="Correct the filter first') == 4
    assert "?exit_code=abc&amp;node=n1&amp;sort=exit_code" in body


@pytest.mark.parametrize(
    "query",
    [
        "since=0001-01-01T00:00:00%2B14:00",
        "until=9999-12-31T23:59:59-14:00",
        "since=0001-01-01T00:00:00%2B14:00&sort=-started",
    ],
)
def test_an_out_of_range_date_is_a_form_error_not_a_500(op, tasks, query):
    r = op.get(job_url("job", tasks) + "?" + query)
    body = r.content.decode()
    assert (
        r.status_code == 200
        and ids(r) == []
        and "Out of range: " in body
        and 'aria-invalid="true"' in body
    )
    assert op.get(job_url("job", tasks) + "?" + query, headers=HTMX).status_code == 200


def test_counts_a_state_filter_from_the_counters_without_a_count_query(op, tasks):
    body = op.get(job_url("job", tasks, state="completed")).content.decode()
    assert "3 tasks match" in body


def test_counts_any_other_filter_only_when_asked(op, tasks):
    body = op.get(job_url("job", tasks, node="n1")).content.decode()
    assert "Count matching tasks" in body
    assert "2 tasks match" in op.get(job_url("job-count", tasks, node="n1")).content.decode()


@pytest.mark.parametrize(
    "query, queries",
    [
        ("", 6),
        ("?state=completed", 6),
        ("?exit_code=1&sort=-exit_code", 6),
        # no task has ended: the page reaches the "no value" segment, one more query
        ("?exit_code=1&sort=-ended", 7),
        ("?sort=runtime&q=t", 7),
    ],
)
def test_one_page_costs_a_fixed_number_of_queries(
    op, job, query, queries, django_assert_num_queries
):
    for i in range(60):
        TaskFactory.build(job=job, task_id=f"t{i:03d}", state="completed", exit_code=1).save()
    # session, user, membership, job, one page of tasks, bulk runs in progress
    with django_assert_num_queries(queries):
        assert op.get(job_url("job", job) + query).status_code == 200


def test_polls_visible_rows_while_tasks_can_change(op, tasks):
    r = op.get(job_url("job", tasks), headers=HTMX)
    body = r.content.decode()
    assert (
        r.status_code == 200
        and body.lstrip().startswith('<div id="job-live"')
        and "every 2s" in body
    )


@pytest.mark.parametrize("tasks", [0, 1])
def test_an_active_job_with_nothing_running_keeps_polling_slowly_for_new_tasks(op, job, tasks):
    """Tasks can still be added to it: it is not "final", whether it has no tasks or only
    completed ones."""
    for _ in range(tasks):
        TaskFactory(job=job, succeeded=True)
    r = op.get(job_url("job", job), headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200 and 'hx-trigger="every 10s"' in body
    assert "Final" not in body and "checking for new tasks every 10 s" in body


def test_a_task_added_later_is_listed_by_the_next_poll(op, job):
    assert "This job has no tasks yet" in op.get(job_url("job", job), headers=HTMX).content.decode()
    TaskFactory(job=job, task_id="late")
    assert 'data-task="late"' in op.get(job_url("job", job), headers=HTMX).content.decode()


def test_stops_polling_once_the_job_is_completed_and_nothing_runs(op, job):
    TaskFactory(job=job, succeeded=True)
    Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED)
    r = op.get(job_url("job", job), headers=HTMX)
    assert r.status_code == 286 and "hx-trigger" not in r.content.decode()
    assert "Final: completed, nothing can change" in r.content.decode()


def test_stops_polling_in_a_terminated_job_whose_active_tasks_will_never_run(op):
    job = JobFactory(completed=True)
    TaskFactory(job=job)
    client = signed_in(MembershipFactory(account=job.account).user)
    assert client.get(job_url("job", job), headers=HTMX).status_code == 286


def test_keeps_polling_while_a_bulk_run_is_in_progress(op, job):
    TaskFactory(job=job, succeeded=True)
    BulkOperationFactory(job=job, state="running")
    r = op.get(job_url("job", job), headers=HTMX)
    assert r.status_code == 200 and "Bulk reactivate running" in r.content.decode()


def test_add_task_button_says_why_a_completed_job_takes_none(op):
    job = JobFactory(completed=True)
    client = signed_in(MembershipFactory(account=job.account).user)
    body = client.get(job_url("job", job)).content.decode()
    assert "The specified job is already in a completed state." in body


def test_viewer_sees_every_bulk_button_disabled_with_the_reason(view, tasks):
    # Add task, the three "everything matching" actions and the job's disable, update,
    # terminate and delete; the selection bar is not shown at all, since a viewer has nothing to select with.
    body = view.get(job_url("job", tasks)).content.decode()
    assert body.count('disabled title="Your role on this account is viewer') == 8


def test_an_empty_result_names_the_filter_and_offers_to_clear_it(op, job):
    TaskFactory(job=job, task_id="t1")
    body = op.get(job_url("job", job, state="running")).content.decode()
    assert (
        "No task matches <code>state=running</code>" in body
        and '<a href="?">Clear the filter</a>' in body
    )


def test_a_viewer_sees_no_selection_checkboxes(view, job):
    TaskFactory(job=job, task_id="t1")
    body = view.get(job_url("job", job)).content.decode()
    assert (
        "data-select-all" not in body
        and 'name="task"' not in body
        and "Act on the selected tasks" not in body
    )


def test_an_operator_does(op, job):
    TaskFactory(job=job, task_id="t1")
    body = op.get(job_url("job", job)).content.decode()
    assert "data-select-all" in body and 'name="task" value="t1"' in body
