"""tasks.operations.claim_scan through claim_work: a task that can start is claimed
whatever number of tasks that cannot start are ahead of it, and a job whose oldest tasks
can start costs the claim what it did before."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Task
from tasks.operations import claim_scan
from tasks.operations.tasks import add_task_collection
from tests.execution import add, claim, claimed_ids, make_job, make_node, make_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(account):
    return make_pool(account)


def add_many(job, prefix: str, n: int, **spec) -> None:
    for start in range(0, n, 100):
        ids = [f"{prefix}{i:05d}" for i in range(start, min(start + 100, n))]
        specs = [{"id": i, "commandLine": "/bin/true", **spec} for i in ids]
        results = add_task_collection(job, specs=specs, ids=ids)
        assert all(r.error is None for r in results)


def passes_until_claimed(node, most: int) -> tuple[int, list[str]]:
    for n in range(1, most + 1):
        ids = claimed_ids(node, limit=1)
        if ids:
            return n, ids
    return most, []


def test_a_free_task_behind_2500_blocked_ones_runs(account, pool):
    node = make_node(pool, slots=1)
    job = make_job(account, pool, usesTaskDependencies=True)
    add(job, "first", "sleep 1000")
    assert claimed_ids(node, limit=1) == ["first"]  # running: its dependents stay blocked
    node = make_node(pool, "node-2", slots=1)
    add_many(job, "blocked", 2500, dependsOn={"taskIds": ["first"]})
    add(job, "free")
    passes, ids = passes_until_claimed(node, 5)
    assert ids == ["free"]
    assert passes == claim_scan.scan_passes(2500) == 2


def test_a_task_behind_more_than_any_node_has_slots_for_is_reached(account, pool, monkeypatch):
    monkeypatch.setattr(claim_scan, "CLAIM_SCAN_LIMIT", 10)
    node = make_node(pool, slots=2)
    job = make_job(account, pool)
    add_many(job, "big", 25, requiredSlots=4)
    add(job, "small")
    passes, ids = passes_until_claimed(node, 10)
    assert ids == ["small"]
    assert passes == claim_scan.scan_passes(25) == 5


def test_an_older_task_that_becomes_ready_keeps_its_turn_while_the_scan_resumes(
    account, pool, monkeypatch
):
    monkeypatch.setattr(claim_scan, "CLAIM_SCAN_LIMIT", 10)
    node = make_node(pool, slots=1)
    job = make_job(account, pool)
    add(job, "old", requiredSlots=2)  # cannot start on a 1-slot node
    add_many(job, "big", 30, requiredSlots=2)
    assert claim(node, limit=1) == []  # read 10: resumes after them next time
    Task.objects.filter(task_id="old").update(required_slots=1)
    assert claimed_ids(node, limit=1) == ["old"]


def test_a_claim_of_a_job_whose_oldest_tasks_can_start_sends_what_it_did(account, pool):
    node = make_node(pool, slots=8)
    job = make_job(account, pool)
    add_many(job, "t", 50)
    claim(node, limit=4)  # statements prepared; a first pass over the job
    with CaptureQueriesContext(connection) as queries:
        assert len(claim(node, limit=4)) == 4
    # node, jobs, one page of 4 tasks, the claim's UPDATE, the INSERT of its attempts, the
    # job's counters: no statement for the scan's place.
    assert len(queries) == 6, [q["sql"][:80] for q in queries]
