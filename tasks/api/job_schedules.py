"""Job schedule API views: one class per Batch path (REST: /jobschedules...)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from tasks.operations import job_schedules as ops
from tasks.queries.job_schedules import (
    get_job_schedule,
    job_schedule_task_counts,
    list_job_schedules,
    list_jobs_of_schedule,
)
from tasks.wire import serializers as wire_serializers
from tasks.wire.job_schedule_serializers import (
    JobScheduleAddParameterSerializer,
    JobSchedulePatchParameterSerializer,
    JobScheduleUpdateParameterSerializer,
)
from tasks.wire.serializers import validate_wire

from . import odata
from .base import BatchApiView
from .conditional import check_read, write_precondition
from .render import job_json
from .render_job_schedules import job_schedule_json, job_schedule_url

# Read-only properties a client may send back in an Update (14.x sends the whole object).
READ_ONLY = wire_serializers.READ_ONLY | {"id", "displayName"}


class JobScheduleBaseApi(BatchApiView):
    def get_schedule(self, schedule_id):
        return get_job_schedule(self.account, schedule_id)

    def schedule_headers(self, response, schedule):
        return self.resource_headers(
            response,
            etag=schedule.etag,
            last_modified=schedule.last_modified,
            url=job_schedule_url(self.base_url, schedule),
        )

    def counts(self, schedules):
        return job_schedule_task_counts(schedules) if self.expand_stats() else None


class JobScheduleListApi(JobScheduleBaseApi):
    @extend_schema(
        request=JobScheduleAddParameterSerializer,
        responses={201: None},
        summary="Add Job Schedule",
        operation_id="Add_Job_Schedule",
    )
    def post(self, request):
        spec = validate_wire(JobScheduleAddParameterSerializer, self.json_body())
        schedule = ops.add_job_schedule(self.account, spec=spec)
        return self.created(
            etag=schedule.etag,
            last_modified=schedule.last_modified,
            url=job_schedule_url(self.base_url, schedule),
        )

    @extend_schema(
        summary="List Job Schedules",
        operation_id="List_Job_Schedules",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        where = odata.job_schedule_filter(self.params.get("$filter", ""))
        page = list_job_schedules(
            self.account, where=where, after=self.skiptoken(), limit=self.page_size()
        )
        schedules = page.rows
        counts, select = self.counts(schedules), self.select()
        items = [
            self.selected(
                job_schedule_json(
                    s,
                    base=self.base_url,
                    version=self.api_version,
                    counts=None if counts is None else counts.get(s.pk, {}),
                ),
                select,
            )
            for s in schedules
        ]
        return self.envelope(
            items,
            metadata="jobschedules",
            page=page,
        )


class JobScheduleApi(JobScheduleBaseApi):
    @extend_schema(
        summary="Get Job Schedule",
        operation_id="Get_Job_Schedule",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, schedule_id):
        schedule = self.get_schedule(schedule_id)
        check_read(request._request.META, schedule)
        counts = self.counts([schedule])
        body = job_schedule_json(
            schedule,
            base=self.base_url,
            version=self.api_version,
            counts=None if counts is None else counts.get(schedule.pk, {}),
        )
        body = self.selected(body, self.select())
        body["odata.metadata"] = f"{self.base_url}/$metadata#jobschedules/@Element"
        return self.schedule_headers(Response(body), schedule)

    @extend_schema(
        summary="Job Schedule Exists",
        responses={200: None, 404: None},
        operation_id="Job_Schedule_Exists",
    )
    def head(self, request, schedule_id):
        schedule = self.get_schedule(schedule_id)
        check_read(request._request.META, schedule)
        return self.schedule_headers(Response(None, status=200), schedule)

    @extend_schema(
        request=JobScheduleUpdateParameterSerializer,
        responses={200: None},
        summary="Update Job Schedule",
        operation_id="Update_Job_Schedule",
    )
    def put(self, request, schedule_id):
        return self._update(schedule_id, JobScheduleUpdateParameterSerializer, replace=True)

    @extend_schema(
        request=JobSchedulePatchParameterSerializer,
        responses={200: None},
        summary="Patch Job Schedule",
        operation_id="Patch_Job_Schedule",
    )
    def patch(self, request, schedule_id):
        return self._update(schedule_id, JobSchedulePatchParameterSerializer, replace=False)

    def _update(self, schedule_id, serializer, *, replace):
        precondition = write_precondition(self.request._request.META)
        schedule = self.get_schedule(schedule_id)
        spec = validate_wire(serializer, self.json_body(allow_empty=not replace), known=READ_ONLY)
        spec = {k: v for k, v in spec.items() if k not in READ_ONLY}
        schedule = ops.update_job_schedule(
            schedule, spec=spec, replace=replace, precondition=precondition
        )
        return self.schedule_headers(Response(None, status=200), schedule)

    @extend_schema(
        responses={202: None}, summary="Delete Job Schedule", operation_id="Delete_Job_Schedule"
    )
    def delete(self, request, schedule_id):
        precondition = write_precondition(request._request.META)
        ops.delete_job_schedule(self.get_schedule(schedule_id), precondition=precondition)
        return Response(None, status=202)


class JobScheduleDisableApi(JobScheduleBaseApi):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Disable Job Schedule",
        operation_id="Disable_Job_Schedule",
    )
    def post(self, request, schedule_id):
        precondition = write_precondition(request._request.META)
        schedule = ops.disable_job_schedule(
            self.get_schedule(schedule_id), precondition=precondition
        )
        return self.schedule_headers(Response(None, status=204), schedule)


class JobScheduleEnableApi(JobScheduleBaseApi):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Enable Job Schedule",
        operation_id="Enable_Job_Schedule",
    )
    def post(self, request, schedule_id):
        precondition = write_precondition(request._request.META)
        schedule = ops.enable_job_schedule(
            self.get_schedule(schedule_id), precondition=precondition
        )
        return self.schedule_headers(Response(None, status=204), schedule)


class JobScheduleTerminateApi(JobScheduleBaseApi):
    @extend_schema(
        request=None,
        responses={202: None},
        summary="Terminate Job Schedule",
        operation_id="Terminate_Job_Schedule",
    )
    def post(self, request, schedule_id):
        precondition = write_precondition(request._request.META)
        schedule = ops.terminate_job_schedule(
            self.get_schedule(schedule_id), precondition=precondition
        )
        return self.schedule_headers(Response(None, status=202), schedule)


class JobScheduleJobListApi(JobScheduleBaseApi):
    @extend_schema(
        summary="List Jobs From Schedule",
        operation_id="List_Jobs_From_Schedule",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, schedule_id):
        schedule = self.get_schedule(schedule_id)
        where = odata.job_filter(self.params.get("$filter", ""))
        page = list_jobs_of_schedule(
            schedule, where=where, after=self.skiptoken(), limit=self.page_size()
        )
        jobs = page.rows
        stats, select = self.expand_stats(), self.select()
        items = [
            self.selected(
                job_json(j, base=self.base_url, version=self.api_version, stats=stats), select
            )
            for j in jobs
        ]
        return self.envelope(items, metadata="jobs", page=page)
