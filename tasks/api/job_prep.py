"""List Preparation and Release Task Status: GET /jobs/{job}/jobpreparationandreleasetaskstatus.

One entry per node that ran the job's preparation (tasks.models.JobPreparation), in Batch's
wire form (JobPreparationAndReleaseTaskExecutionInformation), with $filter, $select and
maxresults paging like the other lists. The tasks' files are the node's, under
workitems/<job>/job-1/jobpreparation and .../jobrelease (the node files API serves them).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

from tasks.models import JobPreparation
from tasks.nodehost.layout import task_key_within_node
from tasks.operations.job_ends import PREPARATION_ID, RELEASE_ID
from tasks.operations.job_preparation import can_list_job_preparation_status
from tasks.queries.job_preparations import list_job_preparations
from tasks.queries.jobs import get_job
from tasks.timefmt import format_datetime_wire as dt

from .base import BatchApiView
from .odata import (
    ORDERING,
    STRING_OPS,
    Kind,
    Null,
    Prop,
    Schema,
    datetime_property,
    enum_property,
    filter_of,
)
from .render import node_url

STATUS = Schema.of(
    {
        "poolId": Prop("pool_name", Kind.FOLDED, STRING_OPS),
        "nodeId": Prop("node_name", Kind.TEXT, STRING_OPS),
        "jobPreparationTaskExecutionInfo/state": enum_property(
            "prep_state", JobPreparation.State.values
        ),
        "jobPreparationTaskExecutionInfo/result": enum_property(
            "prep_result", JobPreparation.Result.values, Null.BLANK
        ),
        "jobPreparationTaskExecutionInfo/exitCode": Prop(
            "prep_exit_code", Kind.INT, ORDERING, Null.NULL
        ),
        "jobPreparationTaskExecutionInfo/startTime": datetime_property("prep_start_time"),
        "jobPreparationTaskExecutionInfo/endTime": datetime_property("prep_end_time", Null.NULL),
        "jobPreparationTaskExecutionInfo/retryCount": Prop("prep_retry_count", Kind.INT, ORDERING),
        "jobReleaseTaskExecutionInfo/state": enum_property(
            "release_state", JobPreparation.State.values, Null.BLANK
        ),
        "jobReleaseTaskExecutionInfo/result": enum_property(
            "release_result", JobPreparation.Result.values, Null.BLANK
        ),
        "jobReleaseTaskExecutionInfo/exitCode": Prop(
            "release_exit_code", Kind.INT, ORDERING, Null.NULL
        ),
    }
)


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def status_json(record: JobPreparation, *, base: str, job_id: str) -> dict:
    pool_id, node_id, root = record.pool_name, record.node_name, record.root_dir.rstrip("/")
    files = f"{node_url(base, pool_id, node_id)}/files"

    def directory(name: str) -> tuple[str, str]:
        key = task_key_within_node(job_id, name)
        return f"{root}/{key}", f"{files}/{key}"

    prep_dir, prep_url = directory(PREPARATION_ID)
    out = {
        "poolId": pool_id,
        "nodeId": node_id,
        "nodeUrl": node_url(base, pool_id, node_id),
        "jobPreparationTaskExecutionInfo": _drop_none(
            {
                "startTime": dt(record.prep_start_time),
                "endTime": dt(record.prep_end_time),
                "state": record.prep_state,
                "taskRootDirectory": prep_dir,
                "taskRootDirectoryUrl": prep_url,
                "exitCode": record.prep_exit_code,
                "failureInfo": record.prep_failure_info,
                "retryCount": record.prep_retry_count,
                "lastRetryTime": dt(record.prep_last_retry_time),
                "result": record.prep_result or None,
            }
        ),
    }
    if record.release_state:
        release_dir, release_url = directory(RELEASE_ID)
        out["jobReleaseTaskExecutionInfo"] = _drop_none(
            {
                "startTime": dt(record.release_start_time),
                "endTime": dt(record.release_end_time),
                "state": record.release_state,
                "taskRootDirectory": release_dir,
                "taskRootDirectoryUrl": release_url,
                "exitCode": record.release_exit_code,
                "failureInfo": record.release_failure_info,
                "result": record.release_result or None,
            }
        )
    return out


class JobPreparationStatusListApi(BatchApiView):
    @extend_schema(
        summary="List Job Preparation and Release Task Status",
        operation_id="List_Job_Preparation_And_Release_Task_Status",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, job_id):
        job = get_job(self.account, job_id)
        refusal = can_list_job_preparation_status(job)
        if refusal:
            raise refusal
        where = filter_of(self.params.get("$filter", ""), STATUS)
        page = list_job_preparations(
            job, where=where, after=self.skiptoken(), limit=self.page_size()
        )
        records = page.rows
        select = self.select()
        items = [
            self.selected(status_json(r, base=self.base_url, job_id=job.job_id), select)
            for r in records
        ]
        return self.envelope(
            items,
            metadata="jobpreparationandreleasetaskstatuslist",
            page=page,
        )
