"""The compute node file calls (REFERENCE §11, under /pools/{pool}/nodes/{node}/files):
a node's root directory (startup/, shared/, workitems/) through the signed API client, with
the headers and errors of the task-file calls and the same link safety."""

import json
from urllib.parse import quote

import pytest

from tests.conftest import BatchTestClient, error_code
from tests.factories import AccountFactory, ComputeNodeFactory, PoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(account, nodes_dir):
    """A node whose root holds a start task's output, a shared file and a task directory."""
    node = ComputeNodeFactory(pool=PoolFactory(account=account, pool_id="p"), node_id="n1")
    root = nodes_dir / account.name / "p" / "n1"
    (root / "startup" / "wd").mkdir(parents=True)
    (root / "startup" / "stdout.txt").write_bytes(b"start task ran\n")
    (root / "shared").mkdir()
    (root / "shared" / "data.bin").write_bytes(b"0123456789")
    (root / "workitems" / "j" / "job-1" / "t" / "wd").mkdir(parents=True)
    (root / "workitems" / "j" / "job-1" / "t" / "stdout.txt").write_bytes(b"task out\n")
    return node


def url(node, path=""):
    base = f"/pools/{node.pool.pool_id}/nodes/{node.node_id}/files"
    return f"{base}/{quote(path, safe='')}" if path else base


def names(response):
    assert response.status_code == 200, response.content
    return [f["name"] for f in json.loads(response.content)["value"]]


def test_lists_the_nodes_root_and_everything_below_it(batch, node):
    r = batch.get(url(node))
    assert names(r) == ["shared", "startup", "workitems"]
    body = json.loads(r.content)
    assert body["value"][0] == {
        "name": "shared",
        "url": "http://testserver/pools/p/nodes/n1/files/shared",
        "isDirectory": True,
    }
    every = names(batch.get(url(node), params={"recursive": "true"}))
    assert every == [
        "shared",
        "shared/data.bin",
        "startup",
        "startup/stdout.txt",
        "startup/wd",
        "workitems",
        "workitems/j",
        "workitems/j/job-1",
        "workitems/j/job-1/t",
        "workitems/j/job-1/t/stdout.txt",
        "workitems/j/job-1/t/wd",
    ]
    startup = names(
        batch.get(url(node), params={"recursive": "true", "$filter": "startswith(name,'startup/')"})
    )
    assert startup == ["startup/stdout.txt", "startup/wd"]


def test_a_long_listing_pages_with_absolute_next_links(batch, node):
    body = json.loads(batch.get(url(node), params={"recursive": "true", "maxresults": "4"}).content)
    assert [f["name"] for f in body["value"]] == [
        "shared",
        "shared/data.bin",
        "startup",
        "startup/stdout.txt",
    ]
    link = body["odata.nextLink"]
    assert link.startswith("http://testserver/pools/p/nodes/n1/files?") and "recursive=true" in link


def test_get_returns_the_bytes_a_range_and_the_properties(batch, node):
    r = batch.get(url(node, "startup/stdout.txt"))
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"start task ran\n"
    r = batch.get(url(node, "shared/data.bin"), headers={"ocp-range": "bytes=2-4"})
    assert r.status_code == 200 and b"".join(r.streaming_content) == b"234"
    assert r["X-Content-Type-Options"] == "nosniff" and "sandbox" in r["Content-Security-Policy"]
    head = batch.head(url(node, "shared/data.bin"))
    assert head.status_code == 200 and head["Content-Length"] == "10"
    assert (
        head["ocp-batch-file-url"] == "http://testserver/pools/p/nodes/n1/files/shared%2Fdata.bin"
    )
    assert head["ocp-batch-file-isdirectory"] == "false" and head["ocp-batch-file-mode"] == "0644"
    assert head["ocp-creation-time"].endswith("GMT") and head["Last-Modified"].endswith("GMT")
    assert batch.head(url(node, "workitems"))["ocp-batch-file-isdirectory"] == "true"


def test_delete_removes_a_file_and_a_directory_only_with_recursive(batch, node):
    assert batch.delete(url(node, "shared/data.bin")).status_code == 200
    assert batch.get(url(node, "shared/data.bin")).status_code == 404
    r = batch.delete(url(node, "startup"))
    assert r.status_code == 409 and error_code(r) == "OperationInvalidForCurrentState"
    assert batch.delete(url(node, "startup"), params={"recursive": "true"}).status_code == 200
    assert names(batch.get(url(node))) == ["shared", "workitems"]


@pytest.mark.parametrize("path", ["nope.txt", "shared/nope", "../n2/shared", "startup/../../x"])
def test_a_missing_or_escaping_path_is_file_not_found(batch, node, path):
    r = batch.get(url(node, path))
    assert r.status_code == 404 and error_code(r) == "FileNotFound"


def test_an_unknown_node_or_pool_is_not_found(batch, node):
    r = batch.get("/pools/p/nodes/ghost/files")
    assert r.status_code == 404 and error_code(r) == "NodeNotFound"
    r = batch.get("/pools/ghost/nodes/n1/files/shared%2Fdata.bin")
    assert r.status_code == 404 and error_code(r) == "PoolNotFound"


def test_another_accounts_node_is_not_found(node, nodes_dir):
    """The other account has a pool and a node of the same ids, with files of its own."""
    other = AccountFactory()
    ComputeNodeFactory(pool=PoolFactory(account=other, pool_id="p"), node_id="n1")
    (nodes_dir / other.name / "p" / "n1" / "shared").mkdir(parents=True)
    (nodes_dir / other.name / "p" / "n1" / "shared" / "theirs.txt").write_bytes(b"theirs")
    theirs = BatchTestClient(other)
    assert names(theirs.get(url(node), params={"recursive": "true"})) == [
        "shared",
        "shared/theirs.txt",
    ]
    assert theirs.get(url(node, "shared/data.bin")).status_code == 404
    stranger = BatchTestClient(AccountFactory())
    r = stranger.get(url(node))
    assert r.status_code == 404 and error_code(r) == "PoolNotFound"


def test_a_link_in_the_nodes_root_is_never_followed(batch, node, nodes_dir, tmp_path):
    (tmp_path / "secret_key").write_text("the host's secret\n")
    shared = nodes_dir / node.pool.account.name / "p" / "n1" / "shared"
    (shared / "key").symlink_to(tmp_path / "secret_key")
    (shared / "loop").symlink_to(".")
    r = batch.get(url(node, "shared/key"))
    assert (
        r.status_code == 409
        and error_code(r) == "OperationInvalidForCurrentState"
        and b"secret" not in r.content
    )
    assert names(
        batch.get(url(node), params={"recursive": "true", "$filter": "startswith(name,'shared/')"})
    ) == ["shared/data.bin", "shared/key", "shared/loop"]


def test_a_delete_never_goes_through_a_link_swapped_in_above_the_file(
    batch, node, nodes_dir, tmp_path
):
    """A task swapped its job's directory for a link to a folder shaped like it."""
    outside = tmp_path / "outside"
    (outside / "job-1" / "t").mkdir(parents=True)
    (outside / "job-1" / "t" / "keep.txt").write_text("must survive\n")
    job = nodes_dir / node.pool.account.name / "p" / "n1" / "workitems" / "j"
    job.rename(job.with_name("moved"))
    job.symlink_to(outside, target_is_directory=True)
    r = batch.delete(url(node, "workitems/j/job-1"), params={"recursive": "true"})
    assert r.status_code == 404 and error_code(r) == "FileNotFound"
    assert batch.delete(url(node, "workitems/j/job-1/t/keep.txt")).status_code == 404
    assert batch.delete(url(node, "workitems/j"), params={"recursive": "true"}).status_code == 200
    assert (outside / "job-1" / "t" / "keep.txt").read_text() == "must survive\n"
    assert not job.is_symlink() and not job.exists()


def test_a_node_without_a_directory_yet_lists_nothing(batch, account, nodes_dir):
    node = ComputeNodeFactory(
        pool=PoolFactory(account=account, pool_id="fresh"), node_id="creating-1", state="creating"
    )
    assert names(batch.get(url(node))) == []
