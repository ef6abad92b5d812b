"""tasks.queries.dependencies: a task's dependencies summarised by state, and the job's active
tasks that can never run (the job page's "blocked" filter), against the claim."""

import pytest

from tasks.models import ComputeNode
from tasks.operations.bulk import scope_queryset
from tasks.operations.tasks import add_task_collection, reactivate_task
from tasks.queries import dependencies
from tasks.queries.task_list import TaskFilter
from tests.execution import add, claim, claimed_ids, finish, fresh, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(account):
    pool = make_pool(account)
    make_node(pool, "node-1", slots=4)
    return make_job(account, pool, usesTaskDependencies=True)


def node(job):
    return ComputeNode.objects.get(pool__pool_id=job.pool_id, node_id="node-1")


def run(job, exit_codes: dict[str, int]) -> None:
    """Claim and finish these tasks with these exit codes."""
    for attempt in claim(node(job)):
        finish(attempt, exit_codes[attempt.task.task_id])


def test_a_task_without_dependencies_has_no_summary(job):
    assert dependencies.summarise_dependencies(add(job, "alone")) is None


def test_a_short_list_names_each_dependency_with_its_state(job):
    add(job, "ok")
    add(job, "bad", "exit 5")
    run(job, {"ok": 0, "bad": 5})
    add(job, "pending")
    task = add(job, "t", dependsOn={"taskIds": ["ok", "bad", "pending", "not-added"]})
    s = dependencies.summarise_dependencies(task)
    assert [(d.task_id, d.state) for d in s.listed] == [
        ("ok", "satisfied"),
        ("bad", "blocking"),
        ("pending", "active"),
        ("not-added", "missing"),
    ]
    assert s.blocking[0].exit_code == 5 and s.total == 4 and s.satisfied == 1 and s.blocked
    assert s.parts() == [("satisfied", 1), ("blocking", 1), ("active", 1), ("missing", 1)]


def test_a_large_range_is_counted_by_state_in_chunks(
    job, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(dependencies, "LISTED", 5)
    monkeypatch.setattr(dependencies, "CHUNK", 7)
    specs = [
        {"id": str(i), "commandLine": "exit 9" if i == 4 else "/bin/true"} for i in range(1, 21)
    ]
    add_task_collection(job, specs=specs, ids=[s["id"] for s in specs])
    run(job, {"1": 0, "2": 0, "3": 0, "4": 9})
    task = add(job, "sum", dependsOn={"taskIdRanges": [{"start": 1, "end": 25}]})
    # 1 for the listed head, then per chunk of 7 ids one by state and result (4 chunks),
    # and one for the failures of the chunk that has them.
    with django_assert_max_num_queries(1 + 4 + 1):
        s = dependencies.summarise_dependencies(task)
    assert s.total == 25 and len(s.listed) == 5 and s.more == 20
    assert dict(s.counts) == {"satisfied": 3, "blocking": 1, "active": 16, "missing": 5}
    assert [d.task_id for d in s.blocking] == ["4"]


def test_blocked_follows_a_chain_and_matches_what_the_claim_never_takes(job):
    add(job, "a", "exit 5")
    add(job, "soft", "exit 3", exitConditions={"default": {"dependencyAction": "satisfy"}})
    run(job, {"a": 5, "soft": 3})
    b = add(job, "b", dependsOn={"taskIds": ["a"]})
    c = add(job, "c", dependsOn={"taskIds": ["b"]})
    d = add(job, "d", dependsOn={"taskIds": ["soft"]})
    e = add(job, "e", dependsOn={"taskIds": ["x"]})  # x is not added yet: it may still be
    blocked = dependencies.blocked_task_pks(job)
    assert blocked == {b.pk, c.pk}
    assert set(claimed_ids(node(job))) == {"d"}
    assert {fresh(t).state for t in (b, c, e)} == {"active"}
    reactivate_task(fresh(job.tasks.get(task_id="a")))
    assert dependencies.blocked_task_pks(job) == set()
    assert d.pk not in blocked and e.pk not in blocked


def test_the_blocked_filter_lists_counts_and_scopes_bulk_actions_alike(job):
    add(job, "a", "exit 5")
    run(job, {"a": 5})
    b = add(job, "b", dependsOn={"taskIds": ["a"]})
    add(job, "free")
    f = TaskFilter.from_params({"blocked": "1"})
    assert f.is_valid and f.params() == {"blocked": "1"} and not f.counts_from_job
    assert list(f.queryset(job).values_list("pk", flat=True)) == [b.pk]
    scope = {"filter": f.params(), "max_pk": 10**9}
    assert list(scope_queryset(job, scope).values_list("pk", flat=True)) == [b.pk]
    # Without its job it matches nothing rather than every task.
    assert not job.tasks.filter(f.where()).exists()


def test_an_unreadable_blocked_value_is_an_error_not_a_wider_scope(job):
    f = TaskFilter.from_params({"blocked": "maybe"})
    assert "blocked" in f.errors and not f.queryset(job).exists()


def test_pk_runs_name_long_runs_as_ranges_and_list_the_rest(job, monkeypatch):
    pks = [add(job, f"t{i}").pk for i in range(8)]
    chosen = {*pks[0:4], pks[5], pks[7]}
    q = dependencies.pk_runs(chosen)
    assert ("pk__range", (pks[0], pks[3])) in q.children
    assert set(job.tasks.filter(q).values_list("pk", flat=True)) == chosen
    assert not job.tasks.filter(dependencies.pk_runs(set())).exists()
    monkeypatch.setattr(dependencies, "MAX_RANGES", 0)
    assert (
        set(job.tasks.filter(dependencies.pk_runs(chosen)).values_list("pk", flat=True)) == chosen
    )
    monkeypatch.setattr(dependencies, "MAX_PARAMETERS", 3)
    assert set(job.tasks.filter(dependencies.pk_runs(chosen)).values_list("pk", flat=True)) == set(
        pks[0:3]
    )
