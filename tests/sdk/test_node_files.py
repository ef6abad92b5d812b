"""A compute node's files through both SDKs, from a real agent (`manage.py runnode`): list
(recursive, $filter, paging), download (a range too), properties, delete, and a link the
task made that is listed but never followed."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tasks.models import Task
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task
from tests.agents import wait_for

POOL, NODE = "filespool", "files-1"
# A task leaves a file, a directory and a link to the host's password file in the node's
# shared directory, and a file in its own working directory.
COMMAND = (
    "/bin/sh -c 'echo shared result > $AZ_BATCH_NODE_SHARED_DIR/result.txt; "
    "mkdir -p $AZ_BATCH_NODE_SHARED_DIR/cache/deep; echo c > $AZ_BATCH_NODE_SHARED_DIR/cache/deep/c.txt; "
    "ln -s /etc/passwd $AZ_BATCH_NODE_SHARED_DIR/passwd; echo mine > mine.txt'"
)


@pytest.fixture
def node_with_files(agents, sdk_account):
    pool = add_pool(sdk_account, spec={"id": POOL, "vmSize": "local"})
    agents.start(pool, NODE, slots=1)
    job = add_job(sdk_account, spec={"id": "writer", "poolInfo": {"poolId": POOL}})
    task = add_task(job, spec={"id": "w", "commandLine": COMMAND})
    wait_for(
        lambda: Task.objects.get(pk=task.pk).state == Task.State.COMPLETED,
        timeout=30,
        message="the task to complete",
    )
    assert Task.objects.get(pk=task.pk).exit_code == 0
    return agents


def test_node_files_through_sdk15(client15, node_with_files):
    top = {f.name: f for f in client15.list_node_files(POOL, NODE)}
    assert {"shared", "workitems"} <= set(top) and top["shared"].is_directory
    shared = {
        f.name: f
        for f in client15.list_node_files(
            POOL, NODE, recursive=True, filter="startswith(name,'shared/')"
        )
    }
    assert set(shared) == {
        "shared/cache",
        "shared/cache/deep",
        "shared/cache/deep/c.txt",
        "shared/passwd",
        "shared/result.txt",
    }
    assert (
        not shared["shared/passwd"].is_directory
        and shared["shared/passwd"].properties.file_mode == "0777"
    )
    assert shared["shared/result.txt"].properties.content_length == 14
    paged = [f.name for f in client15.list_node_files(POOL, NODE, recursive=True, max_results=2)]
    assert "workitems/writer/job-1/w/wd/mine.txt" in paged and len(paged) == len(set(paged))

    assert (
        b"".join(client15.download_node_file(POOL, NODE, "shared/result.txt")) == b"shared result\n"
    )
    assert (
        b"".join(
            client15.download_node_file(POOL, NODE, "shared/result.txt", ocp_range="bytes=0-5")
        )
        == b"shared"
    )
    assert (
        b"".join(client15.download_node_file(POOL, NODE, "workitems/writer/job-1/w/wd/mine.txt"))
        == b"mine\n"
    )
    props = client15.get_node_file_properties(POOL, NODE, "shared/result.txt")
    assert int(props.content_length) == 14 and props.is_directory in (False, "false")
    assert props.url.endswith(f"/pools/{POOL}/nodes/{NODE}/files/shared%2Fresult.txt")

    with pytest.raises(HttpResponseError) as refused:
        b"".join(client15.download_node_file(POOL, NODE, "shared/passwd"))
    # A streamed download's error body is not read by the SDK: the status says it.
    assert refused.value.status_code == 409

    client15.delete_node_file(POOL, NODE, "shared/result.txt")
    with pytest.raises(ResourceNotFoundError) as gone:
        client15.get_node_file_properties(POOL, NODE, "shared/result.txt")
    assert gone.value.status_code == 404
    client15.delete_node_file(POOL, NODE, "shared/cache", recursive=True)
    assert {
        f.name
        for f in client15.list_node_files(
            POOL, NODE, recursive=True, filter="startswith(name,'shared/')"
        )
    } == {"shared/passwd"}
    with pytest.raises(ResourceNotFoundError) as missing:
        list(client15.list_node_files(POOL, "no-such-node"))
    assert missing.value.error.code == "NodeNotFound"


def test_node_files_through_sdk14(run14, node_with_files):
    out = run14("node_files", POOL, NODE)
    assert {"shared", "workitems"} <= set(out["top"])
    assert out["shared"] == [
        "shared/cache",
        "shared/cache/deep",
        "shared/cache/deep/c.txt",
        "shared/passwd",
        "shared/result.txt",
    ]
    assert out["content"] == "shared result\n" and out["range"] == "shared"
    assert out["properties"] == {
        "content-length": "14",
        "ocp-batch-file-isdirectory": "false",
        "url_ends": f"/pools/{POOL}/nodes/{NODE}/files/shared%2Fresult.txt",
    }
    assert out["link"] == [409, "OperationInvalidForCurrentState"]
    assert out["after_delete"][0] == 404  # a HEAD: no body, so no error code
    assert out["after_recursive_delete"] == ["shared/passwd"]
    assert out["unknown_node"] == [404, "NodeNotFound"]
