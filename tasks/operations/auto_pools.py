"""Auto pools: a job whose poolInfo holds an autoPoolSpecification gets a pool of its own.

Batch rules kept here: the pool is created when the job is added, with an id the service
assigns (`<autoPoolIdPrefix>_<guid>`, the prefix at most 20 characters); the job runs on it
and executionInfo.poolId names it (poolInfo keeps the specification, without a poolId);
with poolLifetimeOption `job` it is deleted when the job completes (terminated, all tasks
complete, a task failure's job action) or is deleted, unless keepAlive. `jobschedule`
applies only to the jobs of a job schedule (tasks.operations.job_schedules). The job and
its pool are added together by jobs.add_job_with_auto_pool; the pool ends with the job in
job_ends.end_auto_pool.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from tasks.errors import BatchError
from tasks.models import Job, Pool
from tasks.timefmt import parse_duration

from . import pool_specs
from .pools import delete_pool

AUTO = "poolInfo.autoPoolSpecification"
PREFIX_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{0,20}\Z")
DURATIONS = ("resizeTimeout", "autoScaleEvaluationInterval")


def auto_pool_spec(
    auto: dict, *, lifetimes: tuple[str, ...] = ("job",), path: str = AUTO
) -> tuple[dict, str, bool]:
    """The auto pool's Add Pool specification (durations parsed), its id and keepAlive.
    Refuses a lifetime not in `lifetimes` (a job's own auto pool: `job`; a job schedule's
    job may also share one `jobschedule`), a bad prefix or pool (400 InvalidPropertyValue,
    MissingRequiredProperty), and what Add Pool refuses, named under `path`."""
    AUTO = path  # noqa: N806 - the messages below name the property where the client wrote it
    if not isinstance(auto, dict):
        raise BatchError.invalid_body(f"The property '{AUTO}' must be a JSON object.")
    lifetime = auto.get("poolLifetimeOption")
    if not lifetime:
        raise BatchError.missing_property(f"{AUTO}.poolLifetimeOption")
    if str(lifetime).lower() not in lifetimes:
        raise BatchError.invalid_property(
            f"{AUTO}.poolLifetimeOption",
            lifetime,
            "A job's auto pool lives for the job: use job (jobschedule is for "
            "the jobs of a job schedule).",
        )
    prefix = auto.get("autoPoolIdPrefix") or ""
    if not isinstance(prefix, str) or not PREFIX_PATTERN.match(prefix):
        raise BatchError.invalid_property(
            f"{AUTO}.autoPoolIdPrefix", prefix, "At most 20 of A-Z a-z 0-9 _ -."
        )
    keep_alive = auto.get("keepAlive", False)
    if not isinstance(keep_alive, bool):
        raise BatchError.invalid_body(f"The property '{AUTO}.keepAlive' must be a boolean.")
    pool = auto.get("pool")
    if not pool:
        raise BatchError.missing_property(f"{AUTO}.pool")
    if not isinstance(pool, dict):
        raise BatchError.invalid_body(f"The property '{AUTO}.pool' must be a JSON object.")
    spec = dict(pool)
    for name in DURATIONS:
        if isinstance(spec.get(name), str):
            try:
                spec[name] = parse_duration(spec[name])
            except ValueError as e:
                raise BatchError.invalid_property(
                    f"{AUTO}.pool.{name}", spec[name], str(e)
                ) from None
        elif spec.get(name) is not None and not isinstance(spec[name], timedelta):
            raise BatchError.invalid_body(
                f"The property '{AUTO}.pool.{name}' must be an ISO 8601 duration."
            )
    pool_specs.check_pool_spec(spec, prefix=f"{AUTO}.pool.")
    pool_id = f"{prefix}_{uuid.uuid4()}" if prefix else str(uuid.uuid4())
    return {**spec, "id": pool_id}, pool_id, keep_alive


def delete_auto_pools(job: Job) -> int:
    """The job completed or is being deleted: its auto pools without keepAlive are deleted
    (asynchronously: their nodes leave first). Returns how many it deleted."""
    deleted = 0
    for pool in Pool.objects.filter(owner_job=job, keep_alive=False, state=Pool.State.ACTIVE):
        try:
            delete_pool(pool)
            deleted += 1
        except BatchError:  # deleted meanwhile
            continue
    return deleted
