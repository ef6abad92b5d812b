"""How a claim reads a job's active tasks: oldest first, in keyset pages, skipping those
whose dependencies are not satisfied, at most CLAIM_SCAN_LIMIT rows a pass, and going on
in the next pass from where this one stopped, so that a task that can start is reached
whatever number of tasks that cannot start are ahead of it.

Where a pass stopped is kept in this process's memory (each agent keeps its own): lost on
a restart, which only makes the next pass begin from the oldest again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from tasks import sql
from tasks.exit_conditions import dependencies_met, dependency_ids
from tasks.models import Job, Task

from . import attempt_rules as rules
from . import attempt_store as store

# A claim reads at most this many active tasks of one job per pass (tasks that cannot
# start yet are skipped over, so a long run of them costs a bounded scan per pass).
CLAIM_SCAN_LIMIT = 2000
# Where the last pass over a job stopped (creation time, pk of the last task read), by
# (job pk, job creation time), so that a new job that reuses a pk starts afresh.
_RESUME: dict[tuple[int, datetime], tuple[datetime, int]] = {}
_RESUME_MAX = 10_000  # jobs remembered at once (a deleted job's entry is never read again)


def candidates(job: Job, *, slots: int) -> Iterator[Task]:
    """The job's active tasks in claim order that may run now (locked, skipping rows
    another writer holds, each linked to `job`): at most CLAIM_SCAN_LIMIT read, from the
    oldest and from where the last pass over the job stopped (attempt_rules.scan_budgets).
    `slots` (the claim's slots left) sizes the first page. Stop iterating when the claim
    is full: the next pass then begins where this one began."""
    key = (job.pk, job.creation_time)
    resume = _RESUME.get(key)
    head, rest = rules.scan_budgets(CLAIM_SCAN_LIMIT, resume is not None)
    stopped = yield from _scan(job, None, head, slots)
    if stopped is not None and resume is not None:
        stopped = yield from _scan(job, max(resume, stopped), rest, slots)
    # Reached only when the claim read on to the end of its budget or of the job.
    if stopped is None:
        _RESUME.pop(key, None)
        return
    if len(_RESUME) >= _RESUME_MAX:
        _RESUME.clear()
    _RESUME[key] = stopped


def _scan(job: Job, after: tuple[datetime, int] | None, budget: int, page: int):
    """Yield the tasks that may run now among the next `budget` active tasks after `after`
    (from the oldest when None); return where it stopped, or None when it read to the
    job's end."""
    # The first page holds the slots left (each row read becomes a model instance); a run
    # of tasks that cannot start yet grows the pages below.
    page, scanned = max(page, 1), 0
    while scanned < budget:
        size = min(page, budget - scanned)
        rows = store.candidate_tasks(job, after, size)
        if not rows:
            return None
        scanned += len(rows)
        after = (rows[-1].creation_time, rows[-1].pk)
        ready = _dependencies_ready(job, rows)
        for task in rows:
            if task.spec.get("dependsOn") and task.pk not in ready:
                continue
            sql.link(task, "job", job)
            yield task
        if len(rows) < size:
            return None
        page = min(page * 4, 500)  # a long run of waiting tasks: fewer, larger pages
    return after


def _dependencies_ready(job: Job, rows: list[Task]) -> set[int]:
    """The pks of the tasks among `rows` with dependsOn whose every dependency is
    satisfied. Costs one query per 500 distinct dependency ids (none without dependsOn)."""
    wanted = {t.pk: dependency_ids(t.spec["dependsOn"]) for t in rows if t.spec.get("dependsOn")}
    if not wanted:
        return set()
    keys = [k for ks in wanted.values() for k in ks]
    return dependencies_met(wanted, store.satisfied_dependencies(job, keys))


def scan_passes(older: int) -> int:
    """How many passes over a job a claim takes to reach a task with `older` active tasks
    ahead of it that cannot start (attempt_rules.scan_budgets): the first reads
    CLAIM_SCAN_LIMIT from the oldest, each later one half of it on from where the last
    stopped."""
    if older < CLAIM_SCAN_LIMIT:
        return 1
    _, rest = rules.scan_budgets(CLAIM_SCAN_LIMIT, True)
    return 2 + (older - CLAIM_SCAN_LIMIT) // rest
