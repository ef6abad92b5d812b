"""Batch API views: one class per Batch path, each method 10-20 lines — parse, call one
operation or query, respond in the wire format."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from tasks.errors import BatchError
from tasks.operations import jobs as job_ops
from tasks.operations import tasks as task_ops
from tasks.operations.audit import api_actor, audited_api, record_action
from tasks.queries.jobs import get_job, get_job_task, list_jobs
from tasks.queries.tasks import list_subtasks, list_tasks
from tasks.timefmt import format_datetime_wire
from tasks.wire.job_serializers import (
    JobAddParameterSerializer,
    JobDisableParameterSerializer,
    JobTerminateParameterSerializer,
    JobUpdateParameterSerializer,
)
from tasks.wire.serializers import (
    READ_ONLY,
    TASK_READ_ONLY,
    TaskAddCollectionParameterSerializer,
    TaskAddParameterSerializer,
    TaskUpdateParameterSerializer,
    refuse_unknown_properties,
    validate_wire,
)

from . import odata
from .base import BatchApiView
from .conditional import check_read, write_precondition
from .errors import error_entry
from .render import (
    job_json,
    subtask_json,
    task_counts_json,
    task_json,
    task_url,
)

COLLECTION_BODY_LIMIT = 1024 * 1024  # Add Task Collection: the body must be under 1 MB


# --- jobs --------------------------------------------------------------------------------


class JobListApi(BatchApiView):
    @extend_schema(
        request=JobAddParameterSerializer,
        responses={201: None},
        summary="Add Job",
        operation_id="Add_Job",
    )
    def post(self, request):
        spec = validate_wire(JobAddParameterSerializer, self.json_body())
        job = job_ops.add_job(self.account, spec=spec)
        return self.created(
            etag=job.etag, last_modified=job.last_modified, url=f"{self.base_url}/jobs/{job.job_id}"
        )

    @extend_schema(
        summary="List Jobs", operation_id="List_Jobs", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request):
        where = odata.job_filter(self.params.get("$filter", ""))
        page = list_jobs(self.account, where=where, after=self.skiptoken(), limit=self.page_size())
        jobs = page.rows
        stats, select = self.expand_stats(), self.select()
        items = [
            self.selected(
                job_json(j, base=self.base_url, version=self.api_version, stats=stats), select
            )
            for j in jobs
        ]
        return self.envelope(items, metadata="jobs", page=page)


class JobApi(BatchApiView):
    @extend_schema(summary="Get Job", operation_id="Get_Job", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, job_id):
        job = get_job(self.account, job_id)
        check_read(request._request.META, job)
        body = job_json(
            job, base=self.base_url, version=self.api_version, stats=self.expand_stats()
        )
        body = self.selected(body, self.select())
        body["odata.metadata"] = f"{self.base_url}/$metadata#jobs/@Element"
        return self.resource_headers(
            Response(body),
            etag=job.etag,
            last_modified=job.last_modified,
            url=f"{self.base_url}/jobs/{job.job_id}",
        )

    @extend_schema(
        request=JobUpdateParameterSerializer,
        responses={200: None},
        summary="Update Job",
        operation_id="Update_Job",
    )
    def put(self, request, job_id):
        return self._update(job_id, replace=True)

    @extend_schema(
        request=JobUpdateParameterSerializer,
        responses={200: None},
        summary="Patch Job",
        operation_id="Patch_Job",
    )
    def patch(self, request, job_id):
        return self._update(job_id, replace=False)

    def _update(self, job_id, *, replace):
        precondition = write_precondition(self.request._request.META)
        job = get_job(self.account, job_id)
        spec = validate_wire(
            JobUpdateParameterSerializer,
            self.json_body(allow_empty=True),
            known=set(JobAddParameterSerializer._declared_fields)
            | READ_ONLY
            | {"usesTaskDependencies"},
        )
        job = job_ops.update_job(job, spec=spec, replace=replace, precondition=precondition)
        return self.resource_headers(
            Response(None, status=200),
            etag=job.etag,
            last_modified=job.last_modified,
            url=f"{self.base_url}/jobs/{job.job_id}",
        )

    @extend_schema(responses={202: None}, summary="Delete Job", operation_id="Delete_Job")
    def delete(self, request, job_id):
        precondition = write_precondition(request._request.META)
        job = get_job(self.account, job_id)
        job_ops.delete_job(job, precondition=precondition)
        return Response(None, status=202)


class JobTerminateApi(BatchApiView):
    @extend_schema(
        request=JobTerminateParameterSerializer,
        responses={202: None},
        summary="Terminate Job",
        operation_id="Terminate_Job",
    )
    def post(self, request, job_id):
        precondition = write_precondition(request._request.META)
        job = get_job(self.account, job_id)
        body = validate_wire(JobTerminateParameterSerializer, self.json_body(allow_empty=True))
        job = job_ops.terminate_job(
            job, reason=body.get("terminateReason") or "UserTerminate", precondition=precondition
        )
        return self.resource_headers(
            Response(None, status=202),
            etag=job.etag,
            last_modified=job.last_modified,
            url=f"{self.base_url}/jobs/{job.job_id}",
        )


class JobDisableApi(BatchApiView):
    @extend_schema(
        request=JobDisableParameterSerializer,
        responses={202: None},
        summary="Disable Job",
        operation_id="Disable_Job",
    )
    def post(self, request, job_id):
        precondition = write_precondition(request._request.META)
        job = get_job(self.account, job_id)
        body = validate_wire(JobDisableParameterSerializer, self.json_body())
        job = job_ops.disable_job(
            job, disable_tasks=body["disableTasks"], precondition=precondition
        )
        return self.resource_headers(
            Response(None, status=202),
            etag=job.etag,
            last_modified=job.last_modified,
            url=f"{self.base_url}/jobs/{job.job_id}",
        )


class JobEnableApi(BatchApiView):
    @extend_schema(
        request=None, responses={202: None}, summary="Enable Job", operation_id="Enable_Job"
    )
    def post(self, request, job_id):
        precondition = write_precondition(request._request.META)
        job = job_ops.enable_job(get_job(self.account, job_id), precondition=precondition)
        return self.resource_headers(
            Response(None, status=202),
            etag=job.etag,
            last_modified=job.last_modified,
            url=f"{self.base_url}/jobs/{job.job_id}",
        )


class JobTaskCountsApi(BatchApiView):
    @extend_schema(
        summary="Get Job Task Counts",
        operation_id="Get_Job_Task_Counts",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, job_id):
        job = get_job(self.account, job_id)
        return self.resource_headers(
            Response(task_counts_json(job)), etag=job.etag, last_modified=job.last_modified
        )


# --- tasks -------------------------------------------------------------------------------


class TaskListApi(BatchApiView):
    @extend_schema(
        request=TaskAddParameterSerializer,
        responses={201: None},
        summary="Add Task",
        operation_id="Add_Task",
    )
    def post(self, request, job_id):
        job = get_job(self.account, job_id)
        spec = validate_wire(TaskAddParameterSerializer, self.json_body())
        task = audited_api(
            self.account,
            action="add",
            scope={"job": job.job_id, "tasks": [spec["id"]]},
            operation=lambda: task_ops.add_task(job, spec=spec),
        )
        return self.created(
            etag=task.etag,
            last_modified=task.last_modified,
            url=task_url(self.base_url, job.job_id, task.task_id),
        )

    @extend_schema(
        summary="List Tasks", operation_id="List_Tasks", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, job_id):
        job = get_job(self.account, job_id)
        where = odata.task_filter(self.params.get("$filter", ""))
        page = list_tasks(job, where=where, after=self.skiptoken(), limit=self.page_size())
        tasks = page.rows
        stats, select = self.expand_stats(), self.select()
        items = []
        for task in tasks:
            task.job = job
            body = task_json(
                task, base=self.base_url, job_id=job.job_id, version=self.api_version, stats=stats
            )
            items.append(self.selected(body, select))
        response = self.envelope(items, metadata="tasks", page=page)
        return self.collection_headers(
            response,
            etags=[job.etag] + [f"{t.id_key}:{t.etag}" for t in tasks],
            last_modified=max((t.last_modified for t in tasks), default=job.last_modified),
        )


class TaskCollectionApi(BatchApiView):
    @extend_schema(
        summary="Add Task Collection",
        request=TaskAddCollectionParameterSerializer,
        responses={200: OpenApiTypes.OBJECT},
        operation_id="Add_Task_Collection",
    )
    def post(self, request, job_id):
        job = get_job(self.account, job_id)
        body = self.json_body(limit=COLLECTION_BODY_LIMIT - 1)
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise BatchError.invalid_body(
                "The body must be an object with a 'value' array of tasks."
            )
        refuse_unknown_properties(TaskAddCollectionParameterSerializer, body)
        raw_tasks = body["value"]
        if not raw_tasks:
            raise BatchError.missing_property("value")
        if len(raw_tasks) > task_ops.MAX_COLLECTION:
            raise BatchError.too_many_tasks(len(raw_tasks))
        specs, ids = [], []
        for raw in raw_tasks:
            ids.append(str(raw.get("id", "")) if isinstance(raw, dict) else "")
            try:
                specs.append(validate_wire(TaskAddParameterSerializer, raw))
            except BatchError as error:
                specs.append(error)
        results = task_ops.add_task_collection(job, specs=specs, ids=ids)
        added = [r.task for r in results if r.task is not None]
        self._audit(job, ids, results, added)
        response = Response(
            {
                "odata.metadata": f"{self.base_url}/$metadata#taskaddresult",
                "value": [self._result(job, r) for r in results],
            }
        )
        return self.collection_headers(
            response,
            etags=[f"{t.id_key}:{t.etag}" for t in added],
            last_modified=max((t.last_modified for t in added), default=job.last_modified),
        )

    def _audit(self, job, ids, results, added) -> None:
        """One audit record for the collection: which tasks, how many were added, why not."""
        refused: dict[str, int] = {}
        for r in results:
            if r.task is None:
                refused[r.error.code] = refused.get(r.error.code, 0) + 1
        record_action(
            self.account,
            user=None,
            actor=api_actor(self.account),
            action="add",
            scope={"job": job.job_id, "tasks": ids},
            outcome={
                "state": "done",
                "total": len(ids),
                "succeeded": len(added),
                "refused": refused,
            },
        )

    def _result(self, job, result) -> dict:
        if result.task is not None:
            t = result.task
            return {
                "status": "success",
                "taskId": t.task_id,
                "eTag": t.etag,
                "lastModified": format_datetime_wire(t.last_modified),
                "location": task_url(self.base_url, job.job_id, t.task_id),
            }
        status = "servererror" if result.error.status >= 500 else "clienterror"
        return {
            "status": status,
            "taskId": result.task_id,
            "error": error_entry(result.error, self.batch_request_id),
        }


class TaskApi(BatchApiView):
    @extend_schema(
        summary="Get Task", operation_id="Get_Task", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, job_id, task_id):
        job, task = get_job_task(self.account, job_id, task_id)
        check_read(request._request.META, task)
        body = task_json(
            task,
            base=self.base_url,
            job_id=job.job_id,
            version=self.api_version,
            stats=self.expand_stats(),
        )
        body = self.selected(body, self.select())
        body["odata.metadata"] = f"{self.base_url}/$metadata#tasks/@Element"
        return self.resource_headers(
            Response(body),
            etag=task.etag,
            last_modified=task.last_modified,
            url=task_url(self.base_url, job.job_id, task.task_id),
        )

    @extend_schema(
        request=TaskUpdateParameterSerializer,
        responses={200: None},
        summary="Update Task",
        operation_id="Update_Task",
    )
    def put(self, request, job_id, task_id):
        precondition = write_precondition(request._request.META)
        job, task = get_job_task(self.account, job_id, task_id)
        body = validate_wire(
            TaskUpdateParameterSerializer,
            self.json_body(allow_empty=True),
            known=set(TaskAddParameterSerializer._declared_fields) | TASK_READ_ONLY,
        )
        task = audited_api(
            self.account,
            action="update",
            scope=_task_scope(job, task),
            operation=lambda: task_ops.update_task(
                task, constraints=body.get("constraints"), precondition=precondition
            ),
        )
        return self.resource_headers(
            Response(None, status=200),
            etag=task.etag,
            last_modified=task.last_modified,
            url=task_url(self.base_url, job.job_id, task.task_id),
        )

    @extend_schema(responses={200: None}, summary="Delete Task", operation_id="Delete_Task")
    def delete(self, request, job_id, task_id):
        precondition = write_precondition(request._request.META)
        job, task = get_job_task(self.account, job_id, task_id)
        audited_api(
            self.account,
            action="delete",
            scope=_task_scope(job, task),
            operation=lambda: task_ops.delete_task(task, precondition=precondition),
        )
        return Response(None, status=200)


class TaskTerminateApi(BatchApiView):
    @extend_schema(
        request=None, responses={204: None}, summary="Terminate Task", operation_id="Terminate_Task"
    )
    def post(self, request, job_id, task_id):
        precondition = write_precondition(request._request.META)
        job, task = get_job_task(self.account, job_id, task_id)
        task = audited_api(
            self.account,
            action="terminate",
            scope=_task_scope(job, task),
            operation=lambda: task_ops.terminate_task(task, precondition=precondition),
        )
        return self.resource_headers(
            Response(None, status=204),
            etag=task.etag,
            last_modified=task.last_modified,
            url=task_url(self.base_url, job.job_id, task.task_id),
        )


class TaskReactivateApi(BatchApiView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Reactivate Task",
        operation_id="Reactivate_Task",
    )
    def post(self, request, job_id, task_id):
        precondition = write_precondition(request._request.META)
        job, task = get_job_task(self.account, job_id, task_id)
        task = audited_api(
            self.account,
            action="reactivate",
            scope=_task_scope(job, task),
            operation=lambda: task_ops.reactivate_task(task, precondition=precondition),
        )
        return self.resource_headers(
            Response(None, status=204),
            etag=task.etag,
            last_modified=task.last_modified,
            url=task_url(self.base_url, job.job_id, task.task_id),
        )


def _task_scope(job, task) -> dict:
    return {"job": job.job_id, "tasks": [task.task_id]}


class SubtaskListApi(BatchApiView):
    @extend_schema(
        summary="List Subtasks", operation_id="List_Subtasks", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, job_id, task_id):
        job, task = get_job_task(self.account, job_id, task_id)
        # 14.x reads one page only, so every subtask goes in one response.
        select, subtasks = self.select(), list(list_subtasks(task))
        items = [
            self.selected(
                subtask_json(s, base=self.base_url, job_id=job.job_id, task_id=task.task_id), select
            )
            for s in subtasks
        ]
        response = Response(
            {"odata.metadata": f"{self.base_url}/$metadata#subtasksinfo", "value": items}
        )
        return self.collection_headers(
            response,
            etags=[task.etag]
            + [f"{s.subtask_id}:{s.state}:{s.state_transition_time.isoformat()}" for s in subtasks],
            last_modified=max([task.last_modified] + [s.state_transition_time for s in subtasks]),
        )


@extend_schema(exclude=True)
class UnsupportedApi(BatchApiView):
    """Batch operations batchsite does not implement: a clear Batch error, after auth."""

    def _refuse(self, request, *args, **kwargs):
        raise BatchError(
            "UnsupportedOperation",
            f"batchsite does not support this Batch operation: {request.method} {request.path}. "
            "See the README's table of supported operations.",
            501,
        )

    get = post = put = patch = delete = head = _refuse
