"""A job's end: the one place a job becomes `completed` (with its terminateReason), waits
for its release tasks, takes its auto pool with it, and is purged once deleted.

Every way a job ends comes here: Terminate Job and a job schedule's end (jobs.py,
job_schedules.py), onAllTasksComplete (complete_job_if_all_tasks_done, called where tasks
end: tasks.py, attempts.py, nodes.py), a task's jobAction and the job manager's
killJobOnCompletion (through jobs.terminate_job), Delete Job (purge_deleting_job), and the
last release task to end (job_preparation.py, which calls settle_ending_jobs). This module
imports none of them.

Batch's rules kept here: the nodes that ran the job's preparation run its release when the
job ends; the job stays `terminating` (or `deleting`) until every such node's release
ended or the node is gone (offline, or removed: its records stay, nodeless). An auto pool
with poolLifetimeOption `job` is deleted when its job completes or is deleted, unless
keepAlive.
"""

from __future__ import annotations

from django.db import transaction

from tasks.models import ComputeNode, Job, JobPreparation, NodeCleanup, Task
from tasks.nodehost import layout

from . import wakeups
from .auto_pools import delete_auto_pools
from .common import now
from .task_ends import queue_task_cleanup

# A job's preparation and release tasks: their keys in the job's spec, and Batch's default
# ids, which are also the names of their directories under workitems/<job>/job-1/ (the
# preparation records and their rules: job_preparation.py).
PREPARATION, RELEASE = "jobPreparationTask", "jobReleaseTask"
PREPARATION_ID, RELEASE_ID = "jobpreparation", "jobrelease"
# A node in one of these states runs nothing any more: its pending release is not waited for.
GONE_NODE_STATES = (
    ComputeNode.State.OFFLINE,
    ComputeNode.State.UNUSABLE,
    ComputeNode.State.PREEMPTED,
)
ENDING_JOB_STATES = (Job.State.TERMINATING, Job.State.DELETING)


def releases_pending(job: Job) -> bool:
    """Whether an ending job still waits for a release: it has a release task and a node
    that is not gone has a record whose release has not ended. One query (none without a
    release task)."""
    if RELEASE not in job.spec:
        return False
    return (
        JobPreparation.objects.filter(job_id=job.pk, node__isnull=False)
        .exclude(release_state=JobPreparation.State.COMPLETED)
        .exclude(node__state__in=GONE_NODE_STATES)
        .exists()
    )


def finish_job(job: Job, reason: str) -> None:
    """End a locked job with `reason` (its terminateReason): `completed` at once, its auto
    pool deleted; or, while nodes that ran its preparation still run its release,
    `terminating` until they have (settle_ending_jobs ends it then)."""
    if releases_pending(job):
        if job.state != Job.State.TERMINATING:
            job.move_to(Job.State.TERMINATING, now())
        job.terminate_reason = reason
        job.save(update_fields=[*Job.MOVE_FIELDS, "terminate_reason"])
        wakeups.wake_nodes(job.preparations.values_list("node_id", flat=True))
        return
    fields = job.move_to(Job.State.COMPLETED, now())
    job.end_time = job.state_transition_time
    job.terminate_reason = reason
    job.save(update_fields=[*fields, "end_time", "terminate_reason"])
    end_auto_pool(job)


def end_auto_pool(job: Job) -> None:
    """The job's auto pool (poolLifetimeOption job) goes with it unless keepAlive."""
    if "autoPoolSpecification" in (job.spec.get("poolInfo") or {}):
        delete_auto_pools(job)


def complete_job_if_all_tasks_done(job: Job) -> None:
    """onAllTasksComplete=terminatejob: terminate the job once every task is complete (a job
    with no tasks counts as complete). Call inside the transaction that completed a task."""
    if job.on_all_tasks_complete != Job.OnAllTasksComplete.TERMINATEJOB:
        return
    job.refresh_from_db()
    if job.state != Job.State.ACTIVE:
        return
    if job.active_count == 0 and job.running_count == 0:
        finish_job(job, "AllTasksComplete")


def purge_deleting_job(job: Job, *, batch: int = 5000) -> None:
    """Remove a `deleting` job's tasks in batches, queueing their directories for their
    nodes to delete, then the job itself."""
    if releases_pending(job):
        # Its release tasks run first; the last one to end purges it (or the sweep does).
        wakeups.wake_nodes(job.preparations.values_list("node_id", flat=True))
        return
    queue_job_task_cleanup(job)
    while True:
        with transaction.atomic():
            pks = list(Task.objects.filter(job=job).values_list("pk", flat=True)[:batch])
            if not pks:
                break
            queue_task_cleanup(pks, reason="jobdelete")
            Task.objects.filter(pk__in=pks).delete()
    Job.objects.filter(pk=job.pk, state=Job.State.DELETING).delete()


def settle_ending_jobs(job_pks: list[int] | None = None) -> int:
    """End the jobs that waited for their releases and wait no more: a `terminating` job
    becomes `completed` (its terminateReason kept), a `deleting` one is purged. Called when
    a release ends and by the sweep (a node that went away). Returns how many it ended."""
    jobs = Job.objects.filter(state__in=ENDING_JOB_STATES, spec__has_key=RELEASE)
    if job_pks is not None:
        jobs = jobs.filter(pk__in=job_pks)
    ended = 0
    for pk in list(jobs.values_list("pk", flat=True)):
        deleting = None
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=pk, state__in=ENDING_JOB_STATES).first()
            if job is None or releases_pending(job):
                continue
            if job.state == Job.State.TERMINATING:
                finish_job(job, job.terminate_reason or "UserTerminate")
            else:
                deleting = job
                end_auto_pool(job)
            ended += 1
        if deleting is not None:
            purge_deleting_job(deleting)
    return ended


def queue_job_task_cleanup(job: Job) -> None:
    """Queue the preparation and release directories of a job being purged for their nodes
    to remove, as its tasks' are (task_ends.queue_task_cleanup)."""
    rows = JobPreparation.objects.filter(job=job, node__isnull=False).values_list(
        "node_name", "root_dir"
    )
    NodeCleanup.objects.bulk_create(
        NodeCleanup(
            node_name=node_id,
            pool_id="",
            task_dir=layout.task_dir(root, job.job_id, name),
            reason="jobdelete",
        )
        for node_id, root in rows
        if root
        for name in (PREPARATION_ID, RELEASE_ID)
    )
