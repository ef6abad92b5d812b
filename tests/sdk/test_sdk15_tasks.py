"""azure-batch 15.1.0 (api-version 2025-06-01) driven unmodified against batchsite."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.batch import models as m
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError

from tasks.models import Job, Task


def make_job(client, job_id="job1", **kw):
    client.create_job(
        m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="local"), **kw)
    )
    return job_id


def full_task(task_id: str) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(
        id=task_id,
        display_name="every property",
        command_line="/bin/sh -c 'echo hi'",
        exit_conditions=m.ExitConditions(
            exit_codes=[
                m.ExitCodeMapping(
                    code=3,
                    exit_options=m.ExitOptions(job_action="terminate", dependency_action="block"),
                )
            ],
            exit_code_ranges=[
                m.ExitCodeRangeMapping(
                    start=10, end=20, exit_options=m.ExitOptions(job_action="none")
                )
            ],
            default=m.ExitOptions(job_action="none", dependency_action="satisfy"),
        ),
        resource_files=[
            m.ResourceFile(
                http_url="https://example.invalid/a.txt", file_path="a.txt", file_mode="0644"
            )
        ],
        output_files=[
            m.OutputFile(
                file_pattern="*.txt",
                destination=m.OutputFileDestination(
                    container=m.OutputFileBlobContainerDestination(
                        container_url="https://example.invalid/c", path="out"
                    )
                ),
                upload_options=m.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
            )
        ],
        environment_settings=[
            m.EnvironmentSetting(name="A", value="1"),
            m.EnvironmentSetting(name="B", value="two"),
        ],
        affinity_info=m.BatchAffinityInfo(affinity_id="TVM:node1"),
        constraints=m.BatchTaskConstraints(
            max_wall_clock_time=dt.timedelta(hours=1),
            retention_time=dt.timedelta(days=1),
            max_task_retry_count=3,
        ),
        required_slots=1,
        user_identity=m.UserIdentity(
            auto_user=m.AutoUserSpecification(scope="task", elevation_level="admin")
        ),
        multi_instance_settings=m.MultiInstanceSettings(
            number_of_instances=2, coordination_command_line="echo c"
        ),
        depends_on=m.BatchTaskDependencies(
            task_ids=["a", "b"], task_id_ranges=[m.BatchTaskIdRange(start=1, end=5)]
        ),
        application_package_references=[
            m.BatchApplicationPackageReference(application_id="app", version="1")
        ],
    )


def test_every_task_property_round_trips(client15):
    job = make_job(
        client15, uses_task_dependencies=True, task_failure_mode="performexitoptionsjobaction"
    )
    client15.create_task(job, full_task("Full-1"))
    task = client15.get_task(job, "full-1")
    sent = full_task("Full-1").as_dict()
    got = task.as_dict()
    for key in (
        "id",
        "displayName",
        "commandLine",
        "exitConditions",
        "resourceFiles",
        "outputFiles",
        "environmentSettings",
        "affinityInfo",
        "requiredSlots",
        "userIdentity",
        "multiInstanceSettings",
        "dependsOn",
        "applicationPackageReferences",
    ):
        assert got[key] == sent[key], key
    assert task.constraints.max_wall_clock_time == dt.timedelta(hours=1)
    assert task.constraints.retention_time == dt.timedelta(days=1)
    assert task.constraints.max_task_retry_count == 3
    assert task.state == m.BatchTaskState.ACTIVE
    assert task.execution_info.retry_count == 0 and task.execution_info.requeue_count == 0
    assert task.url.endswith(f"/jobs/{job}/tasks/Full-1")


def test_defaults_are_reported_when_not_given(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    task = client15.get_task(job, "t")
    assert task.constraints.retention_time == dt.timedelta(days=7)
    assert task.constraints.max_task_retry_count == 0
    assert task.constraints.max_wall_clock_time > dt.timedelta(days=10_000_000)
    assert task.required_slots == 1


def test_case_insensitive_duplicate_is_task_exists(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="Dup", command_line="/bin/true"))
    with pytest.raises(ResourceExistsError) as err:
        client15.create_task(job, m.BatchTaskCreateOptions(id="dUP", command_line="/bin/true"))
    assert err.value.error.code == "TaskExists"


def test_add_collection_of_100(client15):
    job = make_job(client15)
    tasks = [m.BatchTaskCreateOptions(id=f"c{i}", command_line="/bin/true") for i in range(100)]
    result = client15.create_task_collection(job, m.BatchTaskGroup(task_values=tasks))
    assert len(result.result_values) == 100
    assert {r.status for r in result.result_values} == {m.BatchTaskAddStatus.SUCCESS}
    assert Task.objects.filter(job__job_id=job).count() == 100


def test_add_collection_of_101_is_refused_whole(client15):
    job = make_job(client15)
    tasks = [m.BatchTaskCreateOptions(id=f"c{i}", command_line="/bin/true") for i in range(101)]
    with pytest.raises(HttpResponseError) as err:
        client15.create_task_collection(job, m.BatchTaskGroup(task_values=tasks))
    assert err.value.status_code == 400
    assert Task.objects.filter(job__job_id=job).count() == 0


def test_add_collection_over_1mb_is_413(client15):
    job = make_job(client15)
    tasks = [
        m.BatchTaskCreateOptions(id=f"big{i}", command_line="/bin/echo " + "x" * 20_000)
        for i in range(60)
    ]
    with pytest.raises(HttpResponseError) as err:
        client15.create_task_collection(job, m.BatchTaskGroup(task_values=tasks))
    assert err.value.status_code == 413
    assert err.value.error.code == "RequestBodyTooLarge"
    assert Task.objects.filter(job__job_id=job).count() == 0


def test_add_collection_with_good_and_bad_tasks_adds_the_good(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="taken", command_line="/bin/true"))
    tasks = [
        m.BatchTaskCreateOptions(id="good1", command_line="/bin/true"),
        m.BatchTaskCreateOptions(id="TAKEN", command_line="/bin/true"),
        m.BatchTaskCreateOptions(id="bad id!", command_line="/bin/true"),
        m.BatchTaskCreateOptions(id="good2", command_line="/bin/true"),
    ]
    result = client15.create_task_collection(job, m.BatchTaskGroup(task_values=tasks))
    by_id = {r.task_id: r for r in result.result_values}
    assert by_id["good1"].status == by_id["good2"].status == m.BatchTaskAddStatus.SUCCESS
    assert by_id["TAKEN"].status == m.BatchTaskAddStatus.CLIENT_ERROR
    assert by_id["TAKEN"].error.code == "TaskExists"
    assert by_id["bad id!"].status == m.BatchTaskAddStatus.CLIENT_ERROR
    assert by_id["bad id!"].error.code == "InvalidPropertyValue"
    assert by_id["good1"].location.endswith(f"/jobs/{job}/tasks/good1")
    assert set(Task.objects.filter(job__job_id=job).values_list("task_id", flat=True)) == {
        "taken",
        "good1",
        "good2",
    }


def test_create_tasks_helper_adds_several_hundred_with_threads_and_replays_safely(client15):
    job = make_job(client15)
    tasks = [
        m.BatchTaskCreateOptions(id=f"bulk{i:04d}", command_line="/bin/true") for i in range(450)
    ]
    result = client15.create_tasks(job, tasks, max_concurrency=4)
    assert len(result.result_values) == 450
    assert all(r.status == m.BatchTaskAddStatus.SUCCESS for r in result.result_values)
    # The same ids again: TaskExists counts as success for the helper; no duplicate appears.
    client15.create_tasks(job, tasks, max_concurrency=4)
    assert Task.objects.filter(job__job_id=job).count() == 450
    job_row = Job.objects.get(job_id=job)
    assert job_row.active_count == 450


def test_create_tasks_helper_splits_a_chunk_refused_with_413(client15):
    job = make_job(client15)
    # 100 tasks of ~15 kB each make a 1.5 MB chunk: the helper must halve it on 413.
    tasks = [
        m.BatchTaskCreateOptions(id=f"wide{i:03d}", command_line="/bin/echo " + "y" * 15_000)
        for i in range(100)
    ]
    result = client15.create_tasks(job, tasks, max_concurrency=2)
    assert len(result.result_values) == 100
    assert Task.objects.filter(job__job_id=job).count() == 100


def test_list_tasks_pages_through_next_link(client15):
    job = make_job(client15)
    client15.create_tasks(
        job, [m.BatchTaskCreateOptions(id=f"p{i:02d}", command_line="/bin/true") for i in range(23)]
    )
    pages = list(client15.list_tasks(job, max_results=5).by_page())
    assert len(pages) == 5
    ids = [t.id for page in pages for t in page]
    assert ids == [f"p{i:02d}" for i in range(23)]


def test_list_tasks_filter_and_select_survive_paging(client15):
    job = make_job(client15)
    client15.create_tasks(
        job, [m.BatchTaskCreateOptions(id=f"f{i:02d}", command_line="/bin/true") for i in range(12)]
    )
    for i in range(0, 12, 2):
        client15.terminate_task(job, f"f{i:02d}")
    found = list(
        client15.list_tasks(
            job, max_results=2, filter="state eq 'completed'", select=["id", "state"]
        )
    )
    assert [t.id for t in found] == [f"f{i:02d}" for i in range(0, 12, 2)]
    assert all(t.state == m.BatchTaskState.COMPLETED and t.command_line is None for t in found)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("startswith(id,'ALPHA')", {"alpha1", "alpha2"}),
        ("id eq 'beta'", {"beta"}),
        ("state eq 'completed'", {"alpha2", "beta"}),
        ("state ne 'completed'", {"alpha1", "gamma"}),
        ("executionInfo/result eq 'failure'", {"alpha2", "beta"}),
        ("executionInfo/exitCode eq 7", {"beta"}),
        ("executionInfo/exitCode ne 7", {"alpha2"}),
    ],
)
def test_each_filter_property(client15, expression, expected):
    job = make_job(client15)
    for task_id in ("alpha1", "alpha2", "beta", "gamma"):
        client15.create_task(job, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/true"))
    client15.terminate_task(job, "alpha2")
    client15.terminate_task(job, "beta")
    Task.objects.filter(task_id="beta").update(exit_code=7)
    Task.objects.filter(task_id="alpha2").update(exit_code=1)
    assert {t.id for t in client15.list_tasks(job, filter=expression)} == expected


def test_time_filters(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="old", command_line="/bin/true"))
    client15.create_task(job, m.BatchTaskCreateOptions(id="new", command_line="/bin/true"))
    client15.terminate_task(job, "new")
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    Task.objects.filter(task_id="old").update(
        creation_time=past, state_transition_time=past, last_modified=past
    )
    Task.objects.filter(task_id="new").update(start_time=dt.datetime.now(dt.UTC))
    cut = "DateTime'2021-01-01T00:00:00Z'"
    assert {t.id for t in client15.list_tasks(job, filter=f"creationTime lt {cut}")} == {"old"}
    assert {t.id for t in client15.list_tasks(job, filter=f"stateTransitionTime gt {cut}")} == {
        "new"
    }
    assert {t.id for t in client15.list_tasks(job, filter=f"executionInfo/endTime ge {cut}")} == {
        "new"
    }
    assert {t.id for t in client15.list_tasks(job, filter=f"executionInfo/startTime ge {cut}")} == {
        "new"
    }


def test_bad_filter_is_invalid_query_parameter_value(client15):
    job = make_job(client15)
    with pytest.raises(HttpResponseError) as err:
        list(client15.list_tasks(job, filter="state eq"))
    assert err.value.status_code == 400
    assert err.value.error.code == "InvalidQueryParameterValue"


def test_get_with_if_none_match_is_304_and_if_match_mismatch_is_412(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="c", command_line="/bin/true"))
    task = client15.get_task(job, "c")
    with pytest.raises(ResourceModifiedError) as not_modified:
        client15.get_task(job, "c", etag=task.etag, match_condition=MatchConditions.IfModified)
    assert not_modified.value.status_code == 304
    with pytest.raises(ResourceModifiedError) as failed:
        client15.terminate_task(
            job, "c", etag="0x8DDEADBEEF", match_condition=MatchConditions.IfNotModified
        )
    assert failed.value.status_code == 412
    assert client15.get_task(job, "c").state == m.BatchTaskState.ACTIVE
    client15.terminate_task(job, "c", etag=task.etag, match_condition=MatchConditions.IfNotModified)
    assert client15.get_task(job, "c").state == m.BatchTaskState.COMPLETED


def test_if_modified_since_in_the_future_is_304(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="c", command_line="/bin/true"))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(ResourceModifiedError):
        client15.get_task(job, "c", if_modified_since=later)
    with pytest.raises(HttpResponseError) as err:
        client15.get_task(job, "c", if_unmodified_since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert err.value.status_code == 412


def test_terminate_then_terminate_again_is_task_completed(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    client15.terminate_task(job, "t")
    task = client15.get_task(job, "t")
    assert task.state == m.BatchTaskState.COMPLETED
    assert task.execution_info.result == m.BatchTaskExecutionResult.FAILURE
    assert task.execution_info.failure_info.code == "TaskEnded"
    with pytest.raises(ResourceExistsError) as err:
        client15.terminate_task(job, "t")
    assert err.value.error.code == "TaskCompleted"


def test_reactivate_a_failed_task_and_each_refusal(client15):
    job = make_job(client15)
    for task_id in ("failed", "ok", "waiting"):
        client15.create_task(job, m.BatchTaskCreateOptions(id=task_id, command_line="/bin/true"))
    client15.terminate_task(job, "failed")
    client15.reactivate_task(job, "failed")
    task = client15.get_task(job, "failed")
    assert task.state == m.BatchTaskState.ACTIVE
    assert task.previous_state == m.BatchTaskState.COMPLETED
    assert task.execution_info.retry_count == 0 and task.execution_info.failure_info is None
    with pytest.raises(ResourceExistsError) as not_completed:
        client15.reactivate_task(job, "waiting")
    assert not_completed.value.error.code == "TaskNotCompleted"
    Task.objects.filter(task_id="ok").update(state="completed", result="success", exit_code=0)
    with pytest.raises(ResourceExistsError) as succeeded:
        client15.reactivate_task(job, "ok")
    assert succeeded.value.error.code == "TaskSucceeded"
    client15.terminate_task(job, "failed")
    for state, code in (
        ("completed", "JobCompleted"),
        ("terminating", "JobBeingTerminated"),
        ("deleting", "JobBeingDeleted"),
    ):
        Job.objects.filter(job_id=job).update(state=state)
        with pytest.raises(ResourceExistsError) as refused:
            client15.reactivate_task(job, "failed")
        assert refused.value.error.code == code


def test_update_replaces_constraints(client15):
    job = make_job(client15, constraints=m.BatchJobConstraints(max_task_retry_count=2))
    client15.create_task(
        job,
        m.BatchTaskCreateOptions(
            id="u",
            command_line="/bin/true",
            constraints=m.BatchTaskConstraints(
                retention_time=dt.timedelta(days=1), max_task_retry_count=5
            ),
        ),
    )
    task = client15.get_task(job, "u")
    task.constraints = m.BatchTaskConstraints(max_wall_clock_time=dt.timedelta(minutes=5))
    client15.replace_task(job, "u", task)
    updated = client15.get_task(job, "u")
    assert updated.constraints.max_wall_clock_time == dt.timedelta(minutes=5)
    assert updated.constraints.retention_time == dt.timedelta(days=7)  # replaced by the default
    assert updated.constraints.max_task_retry_count == 2  # the job's
    assert updated.etag != task.etag
    client15.terminate_task(job, "u")
    with pytest.raises(ResourceExistsError) as err:
        client15.replace_task(job, "u", updated)
    assert err.value.error.code == "TaskCompleted"


def test_delete_task_then_get_is_task_not_found(client15):
    from azure.core.exceptions import ResourceNotFoundError

    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="d", command_line="/bin/true"))
    client15.delete_task(job, "d")
    with pytest.raises(ResourceNotFoundError) as err:
        client15.get_task(job, "d")
    assert err.value.error.code == "TaskNotFound"
    assert Job.objects.get(job_id=job).active_count == 0


def test_list_subtasks_of_a_plain_task_is_empty(client15):
    job = make_job(client15)
    client15.create_task(job, m.BatchTaskCreateOptions(id="plain", command_line="/bin/true"))
    assert list(client15.list_subtasks(job, "plain")) == []


def test_list_subtasks_of_a_multi_instance_task(client15):
    from tasks.models import SubTask

    job = make_job(client15)
    client15.create_task(
        job,
        m.BatchTaskCreateOptions(
            id="mi",
            command_line="/bin/true",
            multi_instance_settings=m.MultiInstanceSettings(
                number_of_instances=3, coordination_command_line="true"
            ),
        ),
    )
    task = Task.objects.get(task_id="mi")
    now = dt.datetime.now(dt.UTC)
    for i in (1, 2):
        SubTask.objects.create(
            task=task,
            subtask_id=i,
            state="completed",
            state_transition_time=now,
            node_name=f"n{i}",
            pool_id="local",
            exit_code=i - 1,
            result="success" if i == 1 else "failure",
        )
    subs = list(client15.list_subtasks(job, "mi"))
    assert [s.id for s in subs] == [1, 2]
    assert [s.exit_code for s in subs] == [0, 1]
    assert subs[1].result == m.BatchTaskExecutionResult.FAILURE
    assert subs[0].node_info.node_id == "n1"


def test_task_counts(client15):
    job = make_job(client15)
    client15.create_tasks(
        job,
        [
            m.BatchTaskCreateOptions(id=f"n{i}", command_line="/bin/true", required_slots=2)
            for i in range(5)
        ],
    )
    client15.terminate_task(job, "n0")
    counts = client15.get_job_task_counts(job)
    assert counts.task_counts.active == 4
    assert counts.task_counts.completed == 1 and counts.task_counts.failed == 1
    assert counts.task_slot_counts.active == 8


def test_wrong_key_unknown_account_and_stale_date_are_403(live_server, sdk_account, client15):
    import base64

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    make_job(client15)
    wrong = base64.b64encode(b"not-the-key" * 4).decode()
    for name, key in ((sdk_account.name, wrong), ("nosuchaccount", sdk_account.primary_key)):
        client = BatchClient(
            endpoint=live_server.url, credential=AzureNamedKeyCredential(name, key), retry_total=0
        )
        with pytest.raises(HttpResponseError) as err:
            client.get_job("job1")
        assert err.value.status_code == 403
        assert err.value.error.code == "AuthenticationFailed"
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    with pytest.raises(HttpResponseError) as err:
        client15.get_job("job1", ocp_date=stale)
    assert err.value.status_code == 403


def test_secondary_key_authenticates(live_server, sdk_account):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(
        endpoint=live_server.url,
        credential=AzureNamedKeyCredential(sdk_account.name, sdk_account.secondary_key),
        retry_total=0,
    )
    make_job(client, "viasecondary")
    assert client.get_job("viasecondary").id == "viasecondary"


def test_another_accounts_job_is_job_not_found(live_server, client15):
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.exceptions import ResourceNotFoundError

    from tests.factories import AccountFactory

    make_job(client15, "private")
    other = AccountFactory(name="other")
    client = BatchClient(
        endpoint=live_server.url,
        credential=AzureNamedKeyCredential(other.name, other.primary_key),
        retry_total=0,
    )
    with pytest.raises(ResourceNotFoundError) as err:
        client.get_job("private")
    assert err.value.error.code == "JobNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.create_task("private", m.BatchTaskCreateOptions(id="x", command_line="/bin/true"))
