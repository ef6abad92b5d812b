"""tasks.nodehost.disk: the walk the agent makes, writes and removes its directories with,
against links, files and FIFOs where it expects directories or output files."""

from __future__ import annotations

import os

import pytest

from tasks.nodehost import disk
from tests.node.test_storage_symlinks import within


@pytest.fixture
def nodes(tmp_path):
    (tmp_path / "nodes" / "a" / "p" / "n").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive\n")
    return tmp_path / "nodes"


def outside_of(nodes):
    return sorted(p.name for p in (nodes.parent / "outside").iterdir())


@pytest.mark.parametrize("planted", ["link", "file", "fifo"])
def test_making_a_directory_replaces_what_stands_in_its_place(nodes, planted):
    spot = nodes / "a" / "p" / "n" / "workitems"
    if planted == "link":
        spot.symlink_to(nodes.parent / "outside", target_is_directory=True)
    elif planted == "file":
        spot.write_text("a task's file\n")
    else:
        os.mkfifo(spot)
    disk.make_dirs(nodes, "a/p/n/workitems/j/job-1")
    assert spot.is_dir() and not spot.is_symlink() and (spot / "j" / "job-1").is_dir()
    assert outside_of(nodes) == ["keep.txt"]


def test_a_directory_is_not_opened_through_a_link_without_make(nodes):
    (nodes / "a" / "p" / "n" / "shared").symlink_to(
        nodes.parent / "outside", target_is_directory=True
    )
    with pytest.raises(OSError), disk.directory(nodes, ["a", "p", "n", "shared"]):
        pass


@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_output_replaces_a_link_or_a_fifo_and_never_waits(nodes, planted):
    directory = nodes / "a" / "p" / "n"
    if planted == "link":
        (directory / "stdout.txt").symlink_to(nodes.parent / "outside" / "keep.txt")
    else:
        os.mkfifo(directory / "stdout.txt")

    def write():
        with (
            disk.directory(nodes, ["a", "p", "n"]) as fd,
            open(disk.open_output(fd, "stdout.txt", append=False), "w") as out,
        ):
            out.write("mine\n")

    within(5, write)
    assert (
        not (directory / "stdout.txt").is_symlink()
        and (directory / "stdout.txt").read_text() == "mine\n"
    )
    assert (nodes.parent / "outside" / "keep.txt").read_text() == "must survive\n"


def test_removing_through_a_link_on_the_way_removes_nothing(nodes):
    (nodes / "a" / "p" / "n" / "workitems").symlink_to(
        nodes.parent / "outside", target_is_directory=True
    )
    disk.remove(nodes, "a/p/n/workitems/keep.txt")
    disk.empty(nodes, "a/p/n/workitems")  # the link itself goes: it stood for a directory
    assert outside_of(nodes) == ["keep.txt"]
    assert not (nodes / "a" / "p" / "n" / "workitems").exists()


def test_a_key_never_leaves_its_base(nodes):
    for key in ("a/../..", "a//p", "", "a/./p"):
        with pytest.raises(ValueError):
            disk.remove(nodes, key)
    assert outside_of(nodes) == ["keep.txt"]


def test_making_a_directory_below_a_descriptor_replaces_a_link_in_its_place(nodes):
    task = nodes / "a" / "p" / "n"
    (task / "wd").symlink_to(nodes.parent / "outside", target_is_directory=True)
    with disk.directory(nodes, ["a", "p", "n"]) as fd:
        disk.make_below(fd, "wd")
        disk.make_below(fd, "wd")  # already a directory: left as it is
    assert (task / "wd").is_dir() and not (task / "wd").is_symlink()
    assert outside_of(nodes) == ["keep.txt"]
