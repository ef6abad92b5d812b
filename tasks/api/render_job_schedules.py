"""Batch JSON of job schedules (BatchJobSchedule / 14.x CloudJobSchedule)."""

from __future__ import annotations

from tasks.models import JobSchedule
from tasks.timefmt import format_datetime_wire as dt

from .render import _drop_none, _int64


def job_schedule_url(base: str, schedule: JobSchedule) -> str:
    return f"{base}/jobschedules/{schedule.schedule_id}"


def job_schedule_json(
    schedule: JobSchedule, *, base: str, version: str, counts: dict[str, int] | None = None
) -> dict:
    """`counts` (the summed counters of its jobs) adds jobScheduleStatistics ($expand=stats)."""
    recent = schedule.recent_job_id
    out = {
        "id": schedule.schedule_id,
        "displayName": schedule.display_name or None,
        "url": job_schedule_url(base, schedule),
        "eTag": schedule.etag,
        "lastModified": dt(schedule.last_modified),
        "creationTime": dt(schedule.creation_time),
        "state": schedule.state,
        "stateTransitionTime": dt(schedule.state_transition_time),
        "previousState": schedule.previous_state or None,
        "previousStateTransitionTime": dt(schedule.previous_state_transition_time)
        if schedule.previous_state
        else None,
        "schedule": schedule.schedule,
        "jobSpecification": schedule.job_specification,
        "executionInfo": _drop_none(
            {
                "nextRunTime": dt(schedule.next_run_time),
                "recentJob": {"id": recent, "url": f"{base}/jobs/{recent}"} if recent else None,
                "endTime": dt(schedule.end_time),
            }
        ),
        "metadata": schedule.metadata,
    }
    if counts is not None:
        zero = "PT0S"
        out["stats"] = {
            "url": job_schedule_url(base, schedule),
            "startTime": dt(schedule.creation_time),
            "lastUpdateTime": dt(schedule.last_modified),
            "userCPUTime": zero,
            "kernelCPUTime": zero,
            "wallClockTime": zero,
            "readIOps": _int64(0, version),
            "writeIOps": _int64(0, version),
            "readIOGiB": 0.0,
            "writeIOGiB": 0.0,
            "numSucceededTasks": _int64(counts.get("succeeded_count", 0), version),
            "numFailedTasks": _int64(counts.get("failed_count", 0), version),
            "numTaskRetries": _int64(0, version),
            "waitTime": zero,
        }
    return _drop_none(out)
