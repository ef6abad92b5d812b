"""BatchError: the one domain error. It carries the Batch error code, message, HTTP status
and detail values; the API renders it as the Batch error body, the dashboard and admin as
a message beside the button."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DETAIL = 1024  # characters of a detail value echoed back; a client may send megabytes


def _bounded(value: object) -> str:
    text = str(value)
    if len(text) <= MAX_DETAIL:
        return text
    return f"{text[:MAX_DETAIL]}... ({len(text)} characters)"


@dataclass
class BatchError(Exception):
    code: str
    message: str
    status: int = 400
    values: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Detail values often quote the request (a property's value, a query): bounded here,
        # once, for the API's error bodies, the dashboard's messages and the logs alike.
        self.values = [(key, _bounded(value)) for key, value in self.values]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    # --- 400 -----------------------------------------------------------------------------
    @classmethod
    def invalid_property(cls, name: str, value: object = None, reason: str = "") -> BatchError:
        values = [("PropertyName", name)]
        if value is not None:
            values.append(("PropertyValue", str(value)))
        if reason:
            values.append(("Reason", reason))
        return cls(
            "InvalidPropertyValue",
            "The value provided for one of the properties in the request body is invalid.",
            400,
            values,
        )

    @classmethod
    def missing_property(cls, name: str) -> BatchError:
        return cls(
            "MissingRequiredProperty",
            "A required property was not specified in the request body.",
            400,
            [("PropertyName", name)],
        )

    @classmethod
    def unsupported_property(cls, name: str) -> BatchError:
        return cls(
            "UnsupportedProperty",
            "One of the properties specified in the request body is not supported.",
            400,
            [("PropertyName", name)],
        )

    @classmethod
    def invalid_body(cls, reason: str) -> BatchError:
        return cls(
            "InvalidRequestBody",
            "The specified Request Body is not syntactically valid.",
            400,
            [("Reason", reason)],
        )

    @classmethod
    def invalid_query(cls, name: str, value: str, reason: str) -> BatchError:
        return cls(
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
            400,
            [("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)],
        )

    @classmethod
    def out_of_range_query(cls, name: str, value: str, reason: str) -> BatchError:
        return cls(
            "OutOfRangeQueryParameterValue",
            "The value for one of the query parameters specified in the request URI is outside"
            " the permissible range.",
            400,
            [("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)],
        )

    @classmethod
    def missing_query(cls, name: str) -> BatchError:
        return cls(
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified.",
            400,
            [("QueryParameterName", name)],
        )

    @classmethod
    def invalid_uri(cls) -> BatchError:
        return cls(
            "InvalidUri", "The requested URI does not represent any resource on the server.", 400
        )

    @classmethod
    def missing_header(cls, name: str) -> BatchError:
        return cls(
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
            400,
            [("HeaderName", name)],
        )

    @classmethod
    def invalid_header(cls, name: str, value: str) -> BatchError:
        return cls(
            "InvalidHeaderValue",
            "The value for one of the HTTP headers is not in the correct format.",
            400,
            [("HeaderName", name), ("HeaderValue", value)],
        )

    @classmethod
    def md5_mismatch(cls) -> BatchError:
        return cls(
            "Md5Mismatch",
            "The MD5 value specified in the request did not match the MD5 value calculated by the server.",
            400,
        )

    @classmethod
    def too_many_tasks(cls, count: int) -> BatchError:
        return cls(
            "InvalidPropertyValue",
            "The value provided for one of the properties in the request body is invalid.",
            400,
            [
                ("PropertyName", "value"),
                ("PropertyValue", str(count)),
                ("Reason", "A task collection may hold at most 100 tasks."),
            ],
        )

    @classmethod
    def body_too_large(cls, size: int, limit: int) -> BatchError:
        return cls(
            "RequestBodyTooLarge",
            "The request body is too large and exceeds the maximum permissible limit.",
            413,
            [("MaxLimit", str(limit)), ("ActualSize", str(size))],
        )

    @classmethod
    def dependencies_not_on_job(cls) -> BatchError:
        return cls(
            "TaskDependenciesNotSpecifiedOnJob",
            "The task has dependencies but the job does not use task dependencies.",
            400,
        )

    @classmethod
    def dependency_list_too_long(cls) -> BatchError:
        return cls(
            "TaskDependencyListTooLong",
            "The task's dependency list is too long.",
            400,
        )

    @classmethod
    def multiple_condition_headers(cls) -> BatchError:
        return cls(
            "MultipleConditionHeadersNotSupported",
            "Multiple condition headers are not supported.",
            400,
        )

    # --- 403 -----------------------------------------------------------------------------
    @classmethod
    def authentication_failed(cls, detail: str) -> BatchError:
        return cls(
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization"
            " header is formed correctly including the signature.",
            403,
            [("AuthenticationErrorDetail", detail)],
        )

    @classmethod
    def invalid_authentication_info(cls, detail: str) -> BatchError:
        return cls(
            "InvalidAuthenticationInfo",
            "Authentication information is not given in the correct format.",
            400,
            [("AuthenticationErrorDetail", detail)],
        )

    # --- 404 -----------------------------------------------------------------------------
    @classmethod
    def job_not_found(cls) -> BatchError:
        return cls("JobNotFound", "The specified job does not exist.", 404)

    @classmethod
    def task_not_found(cls) -> BatchError:
        return cls("TaskNotFound", "The specified task does not exist.", 404)

    @classmethod
    def pool_not_found(cls) -> BatchError:
        return cls("PoolNotFound", "The specified pool does not exist.", 404)

    @classmethod
    def node_not_found(cls) -> BatchError:
        return cls("NodeNotFound", "The specified compute node does not exist.", 404)

    @classmethod
    def file_not_found(cls) -> BatchError:
        return cls("FileNotFound", "The specified file does not exist.", 404)

    @classmethod
    def resource_not_found(cls) -> BatchError:
        return cls("ResourceNotFound", "The specified resource does not exist.", 404)

    # --- 409 -----------------------------------------------------------------------------
    @classmethod
    def task_exists(cls) -> BatchError:
        return cls("TaskExists", "The specified task already exists.", 409)

    @classmethod
    def job_exists(cls) -> BatchError:
        return cls("JobExists", "The specified job already exists.", 409)

    @classmethod
    def pool_exists(cls) -> BatchError:
        return cls("PoolExists", "The specified pool already exists.", 409)

    @classmethod
    def task_completed(cls) -> BatchError:
        return cls("TaskCompleted", "The specified task is already in a completed state.", 409)

    @classmethod
    def task_not_completed(cls) -> BatchError:
        return cls("TaskNotCompleted", "The specified task is not in a completed state.", 409)

    @classmethod
    def task_succeeded(cls) -> BatchError:
        return cls(
            "TaskSucceeded",
            "The specified task completed successfully and cannot be reactivated.",
            409,
        )

    @classmethod
    def job_completed(cls) -> BatchError:
        return cls("JobCompleted", "The specified job is already in a completed state.", 409)

    @classmethod
    def job_being_terminated(cls) -> BatchError:
        return cls("JobBeingTerminated", "The specified job is being terminated.", 409)

    @classmethod
    def job_being_deleted(cls) -> BatchError:
        return cls(
            "JobBeingDeleted",
            "The specified job has been marked for deletion and is being garbage collected.",
            409,
        )

    @classmethod
    def job_not_active(cls) -> BatchError:
        return cls("JobNotActive", "The specified job is not in active state.", 409)

    @classmethod
    def job_schedule_not_found(cls) -> BatchError:
        return cls("JobScheduleNotFound", "The specified job schedule does not exist.", 404)

    @classmethod
    def job_schedule_exists(cls) -> BatchError:
        return cls("JobScheduleExists", "The specified job schedule already exists.", 409)

    @classmethod
    def job_with_same_id_exists(cls) -> BatchError:
        return cls(
            "JobWithSameIdExists",
            "A job with the specified job schedule id exists. Job and job schedule cannot have the same id.",
            409,
        )

    @classmethod
    def job_schedule_with_same_id_exists(cls) -> BatchError:
        return cls(
            "JobScheduleWithSameIdExists",
            "A job schedule with the specified job id exists. Job and job schedule cannot have the same id.",
            409,
        )

    @classmethod
    def job_schedule_completed(cls) -> BatchError:
        return cls(
            "JobScheduleCompleted", "The specified job schedule is already in completed state.", 409
        )

    @classmethod
    def job_schedule_being_terminated(cls) -> BatchError:
        return cls(
            "JobScheduleBeingTerminated", "The specified job schedule is being terminated.", 409
        )

    @classmethod
    def job_schedule_being_deleted(cls) -> BatchError:
        return cls(
            "JobScheduleBeingDeleted",
            "The specified job schedule has been marked for deletion and is being reclaimed.",
            409,
        )

    @classmethod
    def pool_being_deleted(cls) -> BatchError:
        return cls(
            "PoolBeingDeleted",
            "The specified pool has been marked for deletion and is being reclaimed.",
            409,
        )

    @classmethod
    def task_files_cleaned_up(cls) -> BatchError:
        return cls(
            "TaskFilesCleanedup",
            "The task's files have been cleaned up after its retention time.",
            409,
        )

    @classmethod
    def task_files_unavailable(cls) -> BatchError:
        return cls(
            "TaskFilesUnavailable",
            "The task's files are not available: it has not run on a node yet.",
            409,
        )

    @classmethod
    def operation_invalid_for_state(cls, message: str) -> BatchError:
        return cls("OperationInvalidForCurrentState", message, 409)

    # --- 409: compute nodes ---------------------------------------------------------------
    @classmethod
    def node_being_created(cls) -> BatchError:
        return cls("NodeBeingCreated", "The specified node is being created.", 409)

    @classmethod
    def node_being_started(cls) -> BatchError:
        return cls("NodeBeingStarted", "The specified node is being started.", 409)

    @classmethod
    def node_being_rebooted(cls) -> BatchError:
        return cls("NodeBeingRebooted", "The specified node is being rebooted.", 409)

    @classmethod
    def node_being_reimaged(cls) -> BatchError:
        return cls("NodeBeingReimaged", "The specified node is being reimaged.", 409)

    @classmethod
    def node_not_ready(cls) -> BatchError:
        return cls(
            "NodeNotReady",
            "Node is not able to perform the requested operations in its current state.",
            409,
        )

    @classmethod
    def node_already_in_scheduling_state(cls) -> BatchError:
        return cls(
            "NodeAlreadyInTargetSchedulingState",
            "The specified node is already in the target scheduling state.",
            409,
        )

    # --- other ---------------------------------------------------------------------------
    @classmethod
    def condition_not_met(cls, status: int) -> BatchError:
        return cls(
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
            status,
        )

    @classmethod
    def invalid_range(cls) -> BatchError:
        return cls(
            "InvalidRange",
            "The range specified is invalid for the current size of the resource.",
            416,
        )
