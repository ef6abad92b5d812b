"""tasks.nodehost.storage against what a hostile task leaves in its directory: links to the
host's secrets, links to directories outside, link loops, FIFOs, a link swapped in for a
directory above it. Nothing is read, listed or deleted outside the task's directory, and
every listing ends, however the directory looks."""

from __future__ import annotations

import os
import threading

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from tasks.nodehost import layout, storage
from tasks.nodehost.storage import (
    DIRECTORY,
    FILE,
    LINK,
    SPECIAL,
    TaskFiles,
    clean_name,
    publish_dir,
)

KEY = layout.storage_key("acct/pool/n1", "j", "t")


def within(seconds: float, call):
    """Run `call` in a daemon thread: a listing that never ends fails the test instead of
    hanging the suite (the thread dies with the test process)."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds}s"
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def tree(tmp_path):
    """A task directory as a node leaves it, a secret file and a folder outside it, and the
    task's files read through a storage over the nodes' directories."""
    nodes = tmp_path / "nodes"
    task = nodes / KEY
    (task / "wd").mkdir(parents=True)
    (task / "stdout.txt").write_text("out\n")
    (task / "wd" / "result.txt").write_text("result\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive\n")
    secret = tmp_path / ".secret_key"
    secret.write_text("the host's secret\n")
    return {
        "nodes": nodes,
        "task": task,
        "outside": outside,
        "secret": secret,
        "files": TaskFiles(KEY, FileSystemStorage(location=nodes)),
    }


def test_a_link_to_a_secret_is_listed_as_a_link_and_never_read(tree):
    (tree["task"] / "wd" / "x").symlink_to(tree["secret"])
    files = tree["files"]
    info = files.stat("wd/x")
    assert info.kind == LINK and not info.is_directory and info.size == len(str(tree["secret"]))
    with pytest.raises(OSError):
        files.open("wd/x")


def test_nothing_is_read_through_a_linked_directory(tree):
    (tree["task"] / "wd" / "out").symlink_to(tree["outside"])
    files = tree["files"]
    assert files.stat("wd/out").kind == LINK
    assert files.stat("wd/out/keep.txt") is None
    with pytest.raises(OSError):
        files.open("wd/out/keep.txt")


def test_a_link_swapped_in_for_a_directory_above_the_task_leads_nowhere(tree):
    """A task can replace a sibling task's directory (or its job's) with a link to
    anywhere; the sibling's files are then simply not there."""
    sibling = tree["nodes"] / layout.storage_key("acct/pool/n1", "j", "t2")
    sibling.symlink_to(tree["outside"], target_is_directory=True)
    files = TaskFiles(layout.storage_key("acct/pool/n1", "j", "t2"), tree["files"].storage)
    assert files.stat("keep.txt") is None and not files.exists()
    assert list(files.list(recursive=True)) == []
    with pytest.raises(FileNotFoundError):
        files.delete("keep.txt", recursive=False)
    assert (tree["outside"] / "keep.txt").exists()


def test_link_loops_list_once_as_links_and_the_listing_ends(tree):
    wd = tree["task"] / "wd"
    (wd / "a").symlink_to(".")
    (wd / "b").symlink_to(".")
    listing = within(30, lambda: tree["files"].list(recursive=True))
    assert [(f.name, f.kind) for f in listing] == [
        ("stdout.txt", FILE),
        ("wd", DIRECTORY),
        ("wd/a", LINK),
        ("wd/b", LINK),
        ("wd/result.txt", FILE),
    ]
    assert not listing.more


def test_a_fifo_is_listed_as_special_and_opening_it_does_not_wait_for_a_writer(tree):
    os.mkfifo(tree["task"] / "wd" / "pipe")
    files = tree["files"]
    assert files.stat("wd/pipe").kind == SPECIAL
    with pytest.raises(OSError):
        within(30, lambda: files.open("wd/pipe"))


def test_deleting_a_directory_never_empties_what_a_link_in_it_points_to(tree):
    (tree["task"] / "wd" / "out").symlink_to(tree["outside"])
    (tree["task"] / "wd" / "x").symlink_to(tree["secret"])
    assert tree["files"].delete("wd", recursive=True) is True
    assert not (tree["task"] / "wd").exists()
    assert (tree["outside"] / "keep.txt").read_text() == "must survive\n"
    assert tree["secret"].exists()


def test_deleting_a_linked_directory_removes_the_link_only(tree):
    (tree["task"] / "wd" / "out").symlink_to(tree["outside"])
    assert tree["files"].delete("wd/out", recursive=True) is True
    assert not os.path.lexists(tree["task"] / "wd" / "out")
    assert (tree["outside"] / "keep.txt").exists()


def test_a_path_through_a_linked_directory_is_not_deleted(tree):
    (tree["task"] / "wd" / "out").symlink_to(tree["outside"])
    with pytest.raises(FileNotFoundError):
        tree["files"].delete("wd/out/keep.txt", recursive=False)
    assert (tree["outside"] / "keep.txt").exists()


def test_a_name_with_a_nul_is_refused():
    assert clean_name("wd/a\x00b") is None


def test_a_listing_cut_short_by_its_budget_resumes_to_the_same_entries(tree, monkeypatch):
    wd = tree["task"] / "wd"
    for name in ("b", "a.txt", "a", "c"):
        (wd / name).mkdir() if name != "a.txt" else (wd / name).write_text("x")
    (wd / "a" / "deep.txt").write_text("x")
    (wd / "c" / "z.txt").write_text("x")
    files = tree["files"]
    whole = files.list(recursive=True)
    assert not whole.more
    pages, after = [], None
    while True:
        page = files.list(recursive=True, after=after, max_visited=2)
        pages.append([f.name for f in page])
        if not page.more:
            break
        assert page.resume is not None
        after = page.resume
    assert len(pages) > 3 and [n for p in pages for n in p] == [f.name for f in whole]
    assert [f.name for f in whole] == [
        "stdout.txt",
        "wd",
        "wd/a",
        "wd/a/deep.txt",
        "wd/a.txt",
        "wd/b",
        "wd/c",
        "wd/c/z.txt",
        "wd/result.txt",
    ]


def test_a_directory_gives_at_most_its_cap_of_entries(tree, monkeypatch):
    monkeypatch.setattr(storage, "MAX_DIRECTORY_ENTRIES", 5)
    for i in range(20):
        (tree["task"] / "wd" / f"f{i:02d}").write_text("x")
    listing = tree["files"].list(recursive=True, prefix="wd/")
    assert len(listing) == 5 and not listing.more


def test_a_name_prefix_skips_the_other_directories(tree):
    (tree["task"] / "other").mkdir()
    (tree["task"] / "other" / "o.txt").write_text("x")
    assert [f.name for f in tree["files"].list(recursive=True, prefix="wd/")] == ["wd/result.txt"]


@pytest.mark.parametrize("target", ["disk", "object store"])
def test_publishing_copies_regular_files_and_no_link(tree, tmp_path, target):
    wd = tree["task"] / "wd"
    (wd / "x").symlink_to(tree["secret"])
    (wd / "out").symlink_to(tree["outside"])
    os.mkfifo(wd / "pipe")
    shared = (
        FileSystemStorage(location=tmp_path / "shared") if target == "disk" else InMemoryStorage()
    )
    assert within(30, lambda: publish_dir(shared, tree["nodes"], KEY)) == 2
    published = TaskFiles(KEY, shared)
    assert [f.name for f in published.list(recursive=True)] == ["stdout.txt", "wd", "wd/result.txt"]
    assert published.open("wd/result.txt").read() == b"result\n"


def test_publishing_a_task_whose_directory_was_swapped_for_a_link_copies_nothing(tree, tmp_path):
    task = tree["task"]
    os.rename(task, tmp_path / "moved")
    task.symlink_to(tree["outside"], target_is_directory=True)
    shared = FileSystemStorage(location=tmp_path / "shared")
    assert publish_dir(shared, tree["nodes"], KEY) == 0
    assert not (tmp_path / "shared").exists() or not any((tmp_path / "shared").rglob("keep.txt"))
