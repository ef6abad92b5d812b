"""The one keyset pager and cursor format (tasks.queries.pager), as the dashboard's lists and
the API's $skiptoken use it: every walk gives every row once in order, and a cursor is
read back only by the order that made it."""

import json
import re

import pytest
from django.core import signing
from django.urls import reverse

from tasks.models import Task
from tasks.queries import dashboard, pager
from tasks.queries.pager import INT, Key, Order
from tasks.queries.task_list import TaskFilter
from tests.conftest import error_code
from tests.factories import AccountFactory, JobFactory, MembershipFactory, TaskFactory
from tests.web.conftest import job_url, signed_in

pytestmark = pytest.mark.django_db


def test_a_cursor_is_one_url_safe_word_that_reads_back_its_position():
    order = Order.by(Key("id_key"), Key("pk", INT))
    cursor = order.cursor(0, {"id_key": "a b/c?&=", "pk": 7})
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)
    assert order.read(cursor) == (0, ["a b/c?&=", 7])


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        # the old dashboard format: unsigned base64 JSON
        "WzAsICJ0MDUiXQ",
        # the old API format: a signed string key, without the cursor salt
        signing.Signer(salt="batchsite.api.skiptoken", sep=".").sign_object("t05"),
    ],
)
def test_a_cursor_this_service_did_not_make_is_refused(cursor):
    with pytest.raises(pager.BadCursor):
        Order.by(Key("id_key")).read(cursor or "x")


def test_a_cursor_is_refused_unless_it_is_the_exact_word_this_service_wrote():
    """base64 leaves the last character's low bits unused when the bytes do not fill it:
    a cursor with them set decodes to the same signed bytes. Only the word the service
    wrote is its cursor (an API test changing the last character was refused or not,
    by the job's pk)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for n in range(1, 12):  # one of them leaves bits unused (length 2 or 3 mod 4)
        cursor = pager.encode_cursor([0, "t" * n])
        if len(cursor) % 4 in (2, 3):
            break
    last = alphabet.index(cursor[-1])
    twin = cursor[:-1] + alphabet[last ^ 1]  # its lowest bit is never a byte's
    assert twin != cursor and pager.decode_cursor(cursor) == [0, "t" * n]
    with pytest.raises(pager.BadCursor):
        pager.decode_cursor(twin)


@pytest.mark.parametrize(
    ("position", "order"),
    [
        ([0, 5], Order.by(Key("id_key"))),  # another kind
        ([0, "a", 1], Order.by(Key("id_key"))),  # more keys
        ([2, "a"], Order.by(Key("id_key"))),  # no such segment
        ([0, 2**70, 1], Order.nulls_last(Key("exit_code", INT))),
        ([0, "NaN", 1], Order.nulls_last(Key("run_time_us", pager.FLOAT))),
        ([0, 1e400, 1], Order.nulls_last(Key("run_time_us", pager.FLOAT))),
        ([0, "0001-01-01T00:00:00+14:00", 1], Order.nulls_last(Key("start_time", pager.DT))),
        ([0, "2026-01-01T00:00:00", 1], Order.nulls_last(Key("start_time", pager.DT))),
        ([0, "a\x00"], Order.by(Key("id_key"))),
        ([0, True], Order.by(Key("pk", INT))),
    ],
)
def test_a_signed_position_that_is_not_one_of_the_order_is_refused(position, order):
    with pytest.raises(pager.BadCursor):
        order.read(pager.encode_cursor(position))


@pytest.mark.parametrize(
    "position", [[0, 2**70, 1], [0, "a\x00"], [1, {"a": 1}], [0, "9999-12-31T23:59:59-14:00", 1]]
)
def test_the_task_list_shows_page_one_for_a_signed_cursor_of_another_order(op, job, position):
    TaskFactory(job=job, task_id="only")
    for sort in ("id", "exit_code", "-started"):
        r = op.get(job_url("job", job), {"after": pager.encode_cursor(position), "sort": sort})
        assert r.status_code == 200 and 'data-task="only"' in r.content.decode()


def test_a_cursor_of_one_sort_is_not_read_by_another(job):
    for i in range(4):
        TaskFactory(job=job, task_id=f"t{i}", exit_code=i)
    by_id, by_exit = TaskFilter(), TaskFilter(sort="exit_code")
    cursor = pager.page(by_id.queryset(job), by_id.order, limit=2).next_cursor
    with pytest.raises(pager.BadCursor):
        pager.page(by_exit.queryset(job), by_exit.order, after=cursor, limit=2)


def test_three_keys_walk_forwards_and_back_through_every_row_once():
    order = Order.by(Key("state"), Key("exit_code", INT), Key("pk", INT))
    job = JobFactory()
    for i in range(13):
        TaskFactory(job=job, task_id=f"t{i}", state="completed", exit_code=i % 3)
    for i in range(5):
        TaskFactory(job=job, task_id=f"a{i}", exit_code=i % 2)
    qs = Task.objects.filter(job=job)
    expected = list(qs.order_by("state", "exit_code", "pk").values_list("pk", flat=True))
    for desc in (False, True):
        o = Order(order.segments, desc)
        pages = [pager.page(qs, o, limit=4)]
        while pages[-1].next_cursor:
            pages.append(pager.page(qs, o, after=pages[-1].next_cursor, limit=4))
        walked = [t.pk for p in pages for t in p.rows]
        assert walked == (expected[::-1] if desc else expected)
        back = pager.page(qs, o, before=pages[-1].prev_cursor, limit=4)
        assert [t.pk for t in back.rows] == [t.pk for t in pages[-2].rows]


def test_a_list_in_memory_pages_by_position_both_ways():
    items = [f"d{i}" for i in range(12)]
    first = pager.page_list(items, limit=5)
    second = pager.page_list(items, after=first.next_cursor, limit=5)
    last = pager.page_list(items, after=second.next_cursor, limit=5)
    assert (first.rows, second.rows, last.rows) == (items[:5], items[5:10], items[10:])
    assert (first.prev_cursor, last.next_cursor, second.start) == (None, None, 5)
    assert pager.page_list(items, before=last.prev_cursor, limit=5).rows == items[5:10]
    assert pager.page_list(items, before=second.prev_cursor, limit=5).is_first


def test_the_job_list_pages_across_accounts_in_account_then_id_order(monkeypatch):
    monkeypatch.setattr("tasks.web.pages.JOB_PAGE", 3)
    accounts = [AccountFactory(), AccountFactory()]
    user = MembershipFactory(account=accounts[0], role="viewer").user
    MembershipFactory(account=accounts[1], role="viewer", user=user)
    for account in accounts:
        for i in range(4):
            JobFactory(account=account, job_id=f"{account.name}-j{3 - i}")
    client, seen, url = signed_in(user), [], reverse("web:jobs") + "?tab=all"
    for _ in range(5):
        body = client.get(url).content.decode()
        seen += re.findall(r'data-job="([^"]+)"', body)
        more = re.search(r'after=([\w-]+)">Next', body)
        if not more:
            break
        url = reverse("web:jobs") + "?tab=all&after=" + more.group(1)
    assert seen == [f"{a.name}-j{i}" for a in accounts for i in range(4)]


def test_the_audit_trail_pages_to_older_records(account, monkeypatch):
    from tasks.operations.audit import record_action

    monkeypatch.setattr("tasks.web.pages.AUDIT_PAGE", 2)
    for i in range(5):
        record_action(account, user=None, actor="a", action=f"act{i}", scope={}, outcome={})
    page = dashboard.list_audit_records([account], chosen={}, limit=2)
    actions = [r.action for r in page.rows]
    while page.next_cursor:
        page = dashboard.list_audit_records([account], chosen={}, after=page.next_cursor, limit=2)
        actions += [r.action for r in page.rows]
    assert actions == [f"act{i}" for i in range(4, -1, -1)]


def test_an_old_format_skiptoken_is_an_invalid_query_parameter(batch, job):
    TaskFactory(job=job, task_id="t1")
    old = signing.Signer(salt="batchsite.api.skiptoken", sep=".").sign_object("t0")
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$skiptoken": old})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    values = {v["key"]: v["value"] for v in json.loads(r.content)["values"]}
    assert values["QueryParameterName"] == "$skiptoken"


def test_a_dashboard_cursor_is_no_skiptoken_for_another_list(batch, job):
    """A validly signed cursor of another kind of order is a 400 (never a 500), for a list
    read from the database and for one that is not."""
    TaskFactory(job=job, task_id="t1")
    cursor = TaskFilter(sort="exit_code").order.cursor(0, {"exit_code": 1, "pk": 1})
    r = batch.get(f"/jobs/{job.job_id}/tasks", params={"$skiptoken": cursor})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")
    r = batch.get("/supportedimages", params={"$skiptoken": cursor})
    assert (r.status_code, error_code(r)) == (400, "InvalidQueryParameterValue")


@pytest.mark.parametrize("sort", ["exit_code", "-exit_code", "started", "-retries"])
def test_a_sort_key_many_rows_share_walks_forwards_and_back_through_every_row_once(sort):
    """Pages that start and end within a group of rows sharing the key, and cross from one
    group to the next and into the rows without a value (on SQLite each a separate range)."""
    job = JobFactory()
    start = job.creation_time
    for i in range(17):
        TaskFactory(
            job=job,
            task_id=f"t{i:02d}",
            state="completed",
            exit_code=None if i % 7 == 6 else (1 if i < 10 else i % 3),
            start_time=None if i % 7 == 6 else start,
            retry_count=i % 2,
        )
    f = TaskFilter.from_params({"sort": sort})
    qs = f.queryset(job)
    key = f.order.segments[0].keys[0].field
    has, lacks = (
        [t for t in qs if getattr(t, key) is not None],
        [t for t in qs if getattr(t, key) is None],
    )
    has.sort(key=lambda t: (getattr(t, key), t.pk), reverse=f.desc)
    lacks.sort(key=lambda t: t.pk, reverse=f.desc)
    expected = [t.pk for t in has + lacks]
    pages = [pager.page(qs, f.order, limit=3)]
    while pages[-1].next_cursor:
        pages.append(pager.page(qs, f.order, after=pages[-1].next_cursor, limit=3))
    assert [t.pk for p in pages for t in p.rows] == expected
    back = [pages[-1]]
    while back[-1].prev_cursor:
        back.append(pager.page(qs, f.order, before=back[-1].prev_cursor, limit=3))
    assert [t.pk for p in reversed(back) for t in p.rows] == expected
