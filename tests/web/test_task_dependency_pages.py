"""The task page's dependency list pages through every dependency, in dependsOn order, with
the one pager's cursors; the live region's refreshes stay on the page shown."""

import re

import pytest

from tasks.models import Task
from tasks.operations.tasks import add_task_collection
from tasks.queries import dependencies
from tests.execution import add, claim, finish, make_job, make_node, make_pool
from tests.web.conftest import HTMX, task_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(account, monkeypatch):
    """Task `sum` depends on 1..12: 1..3 succeeded, 4 failed, 5..10 wait, 11 and 12 are not
    added; 5 listed a page."""
    monkeypatch.setattr(dependencies, "LISTED", 5)
    pool = make_pool(account)
    node = make_node(pool, slots=4)
    job = make_job(account, pool, usesTaskDependencies=True)
    specs = [{"id": str(i), "commandLine": "exit 9" if i == 4 else "true"} for i in range(1, 11)]
    add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
    for attempt in claim(node):
        finish(attempt, 9 if attempt.task.task_id == "4" else 0)
    return add(job, "sum", dependsOn={"taskIdRanges": [{"start": 1, "end": 12}]})


def listed(body: str) -> list[str]:
    rows = body.split('id="dependency-list"')[1].split("</table>")[0]
    return re.findall(r'data-dependency="([^"]+)"', rows)


def link(body: str, rel: str) -> str | None:
    found = re.search(rf'href="([^"]+)#task-dependencies"[^>]*rel="{rel}"', body)
    return found.group(1).replace("&amp;", "&") if found else None


def test_next_and_previous_walk_every_dependency_once_in_order(op, waiting):
    body = op.get(task_url("task", waiting)).content.decode()
    pages, url = [listed(body)], link(body, "next")
    assert link(body, "prev") is None and "1–5 of 12" in body
    while url:
        body = op.get(url).content.decode()
        pages.append(listed(body))
        url = link(body, "next")
    assert pages == [["1", "2", "3", "4", "5"], ["6", "7", "8", "9", "10"], ["11", "12"]]
    assert "11–12 of 12" in body
    back = op.get(link(body, "prev")).content.decode()
    assert listed(back) == ["6", "7", "8", "9", "10"]
    # Counted over every page, whichever is shown; the failed one is named on every page.
    assert 'data-dependency-count="satisfied">3 satisfied' in back
    assert 'data-dependency-count="active">6 active' in back
    assert 'data-dependency-count="missing">2 not added yet' in back
    blocking = back.split('id="dependency-blocking"')[1].split("</p>")[0]
    four = Task.objects.get(job=waiting.job, task_id="4")
    assert f'href="{task_url("task", four)}"' in blocking and "(exit 9)" in blocking


def test_the_live_refresh_keeps_the_page_of_dependencies(op, waiting):
    first = op.get(task_url("task", waiting)).content.decode()
    second_url = link(first, "next")
    fragment = op.get(second_url, headers=HTMX).content.decode()
    assert listed(fragment) == ["6", "7", "8", "9", "10"]
    poll = re.search(r'id="task-live" hx-get="([^"]+)"', fragment).group(1)
    assert poll.replace("&amp;", "&") == second_url
    assert listed(op.get(poll.replace("&amp;", "&"), headers=HTMX).content.decode()) == listed(
        fragment
    )


def test_a_hand_edited_cursor_shows_the_first_page(op, waiting):
    for query in ("dependencies_after=garbage", "dependencies_before=%00", "dependencies_after="):
        r = op.get(task_url("task", waiting) + "?" + query)
        assert r.status_code == 200 and listed(r.content.decode())[0] == "1"


def test_a_short_list_has_no_pager(op, account):
    pool = make_pool(account)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "a")
    body = op.get(task_url("task", add(job, "b", dependsOn={"taskIds": ["a"]}))).content.decode()
    assert listed(body) == ["a"] and 'id="dependency-pager"' not in body
