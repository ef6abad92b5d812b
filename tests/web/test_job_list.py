"""The jobs page: state, pool, live counts and a progress bar per job."""

import pytest
from django.urls import reverse

from tests.factories import JobFactory, TaskFactory
from tests.web.conftest import HTMX

pytestmark = pytest.mark.django_db


def test_shows_each_jobs_counts_and_progress(op, job):
    TaskFactory.create_batch(2, job=job, succeeded=True)
    TaskFactory(job=job, failed=True)
    TaskFactory(job=job, running=True)
    body = op.get(reverse("web:jobs")).content.decode()
    assert 'data-count="succeeded">2<' in body and 'data-count="failed">1<' in body
    assert 'data-count="running">1<' in body and 'data-count="completed">3<' in body
    assert 'class="succeeded w-50"' in body  # a width class: the CSP allows no inline style


def test_costs_the_same_queries_for_many_jobs(op, account, django_assert_num_queries):
    JobFactory.create_batch(30, account=account)
    # session + user, roles, jobs
    with django_assert_num_queries(4):
        r = op.get(reverse("web:jobs"))
    assert r.status_code == 200 and r.content.decode().count("data-job=") == 30


def test_polls_while_a_job_has_running_tasks(op, job):
    TaskFactory(job=job, running=True)
    r = op.get(reverse("web:jobs"), headers=HTMX)
    assert r.status_code == 200 and 'hx-trigger="every 3s' in r.content.decode()


def test_keeps_polling_slowly_when_nothing_runs_since_jobs_can_be_added_at_any_time(op, job):
    TaskFactory(job=job, succeeded=True)
    r = op.get(reverse("web:jobs"), headers=HTMX)
    body = r.content.decode()
    assert (
        r.status_code == 200
        and 'hx-trigger="every 15s"' in body
        and "checking for new jobs" in body
    )


def test_htmx_gets_the_rows_without_the_page(op, job):
    body = op.get(reverse("web:jobs"), headers=HTMX).content.decode()
    assert body.lstrip().startswith('<div id="jobs-live"') and "<html" not in body


def test_completed_tab_lists_only_completed_jobs(op, account):
    JobFactory(account=account, job_id="done-job", completed=True)
    JobFactory(account=account, job_id="busy-job")
    body = op.get(reverse("web:jobs") + "?tab=completed").content.decode()
    assert "done-job" in body and "busy-job" not in body


def test_links_each_jobs_pool(op, account):
    JobFactory(account=account, job_id="on-farm", pool_id="farm")
    body = op.get(reverse("web:jobs")).content.decode()
    row = body.split('data-job="on-farm"')[1].split("</tr>")[0]
    assert f'<a href="{reverse("web:pool", args=[account.name, "farm"])}">farm</a>' in row


def test_an_empty_search_names_it_and_offers_to_clear_it(op, job):
    body = op.get(reverse("web:jobs"), {"q": "zzz-nothing"}).content.decode()
    assert (
        "id contains “zzz-nothing”" in body and '<a href="?tab=active">Clear the search</a>' in body
    )
