"""An agent whose task-file storage is not its own disk publishes its task directories,
and the web tier reads them through the storage alone (agents on other machines)."""

import json

import pytest

from tasks.models import Task
from tasks.operations.pools import add_pool
from tests.agents import wait_for
from tests.conftest import BatchTestClient
from tests.execution import add, make_job
from tests.factories import AccountFactory


@pytest.fixture
def shared(settings, tmp_path):
    """A storage both the web tier (this process) and the agent use, apart from the
    agent's own directories: what S3 would be between machines."""
    location = tmp_path / "published"
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def test_a_running_tasks_output_is_published_and_read_through_the_storage(agents, shared):
    account = AccountFactory(name="publisher")
    pool = add_pool(account, spec={"id": "remote", "vmSize": "local"})
    agents.start(
        pool,
        "far-away",
        slots=1,
        BATCHSITE_NODE_PUBLISH_SECONDS="0.3",
        BATCHSITE_TASK_FILES_OPTIONS=json.dumps({"location": str(shared)}),
    )
    job = make_job(account, pool)
    task = add(job, "t1", "/bin/sh -c 'echo first; sleep 2; echo second > result.txt'")
    api = BatchTestClient(account)

    def stdout():
        r = api.get(f"/jobs/{job.job_id}/tasks/t1/files/stdout.txt")
        return b"".join(r.streaming_content) if r.status_code == 200 else None

    wait_for(lambda: stdout() == b"first\n", message="the running task's output to be published")
    assert Task.objects.get(pk=task.pk).state == Task.State.RUNNING
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == Task.State.COMPLETED,
        message="the task to end",
    )
    r = api.get(f"/jobs/{job.job_id}/tasks/t1/files/wd%2Fresult.txt")
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"second\n"
    assert (
        shared
        / "publisher"
        / "remote"
        / "far-away"
        / "workitems"
        / job.job_id
        / "job-1"
        / "t1"
        / "stdout.txt"
    ).exists()


def test_the_start_tasks_directory_is_published_for_the_node_files_api(agents, shared):
    account = AccountFactory(name="starter")
    pool = add_pool(
        account,
        spec={
            "id": "remote-start",
            "vmSize": "local",
            "startTask": {"commandLine": "/bin/sh -c 'echo set up; echo done > marker'"},
        },
    )
    agents.start(
        pool,
        "far-away",
        slots=1,
        BATCHSITE_NODE_PUBLISH_SECONDS="0.3",
        BATCHSITE_TASK_FILES_OPTIONS=json.dumps({"location": str(shared)}),
    )
    startup = shared / "starter" / "remote-start" / "far-away" / "startup"
    wait_for(
        lambda: (startup / "stdout.txt").exists(), message="the start task's output to be published"
    )
    assert (startup / "stdout.txt").read_text() == "set up\n"
    assert (startup / "wd" / "marker").read_text() == "done\n"


def test_a_link_the_task_makes_is_never_published(agents, shared, tmp_path):
    """`ln -s` to the host's secret and to a folder outside: the agent publishes neither
    the secret nor the folder's files, only the task's own regular files."""
    secret = tmp_path / "secret_key"
    secret.write_text("the host's secret\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "theirs.txt").write_text("theirs\n")
    account = AccountFactory(name="linker")
    pool = add_pool(account, spec={"id": "remote", "vmSize": "local"})
    agents.start(
        pool,
        "far-away",
        slots=1,
        BATCHSITE_NODE_PUBLISH_SECONDS="0.3",
        BATCHSITE_TASK_FILES_OPTIONS=json.dumps({"location": str(shared)}),
    )
    job = make_job(account, pool)
    task = add(
        job,
        "t1",
        f"/bin/sh -c 'ln -s {secret} leak; ln -s {outside} folder; ln -s . loop; echo mine > mine.txt'",
    )
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == Task.State.COMPLETED,
        message="the task to end",
    )
    api = BatchTestClient(account)
    wait_for(
        lambda: api.get(f"/jobs/{job.job_id}/tasks/t1/files/wd%2Fmine.txt").status_code == 200,
        message="the final publish",
    )
    listed = json.loads(
        api.get(f"/jobs/{job.job_id}/tasks/t1/files", params={"recursive": "true"}).content
    )
    assert [f["name"] for f in listed["value"]] == ["stderr.txt", "stdout.txt", "wd", "wd/mine.txt"]
    published = [p.read_bytes() for p in shared.rglob("*") if p.is_file()]
    assert b"the host's secret\n" not in published and b"theirs\n" not in published
