"""tasks.nodehost.storage: task files through the storage interface, and publishing them."""

from datetime import datetime

import pytest
from django.core.files.storage import FileSystemStorage

from tasks.nodehost import layout
from tasks.nodehost.storage import TaskFiles, clean_name, is_local_to, publish_dir, unpublish_dir


@pytest.fixture
def node_dir(tmp_path):
    """A task directory as a node leaves it, and a storage over the nodes' directories."""
    task = tmp_path / "nodes" / "n1" / "workitems" / "j" / "job-1" / "t"
    (task / "wd" / "sub").mkdir(parents=True)
    (task / "stdout.txt").write_text("hello\n")
    (task / "stderr.txt").write_text("")
    (task / "wd" / "sub" / "deep.txt").write_text("deep")
    return tmp_path, task


def files_of(storage):
    return TaskFiles(layout.storage_key("n1", "j", "t"), storage)


def test_lists_the_top_level_or_everything(node_dir):
    root, _ = node_dir
    files = files_of(FileSystemStorage(location=root / "nodes"))
    assert [(f.name, f.is_directory) for f in files.list(recursive=False)] == [
        ("stderr.txt", False),
        ("stdout.txt", False),
        ("wd", True),
    ]
    assert [f.name for f in files.list(recursive=True)] == [
        "stderr.txt",
        "stdout.txt",
        "wd",
        "wd/sub",
        "wd/sub/deep.txt",
    ]


def test_a_file_has_its_size_times_and_mode(node_dir):
    root, _ = node_dir
    info = files_of(FileSystemStorage(location=root / "nodes")).stat("stdout.txt")
    assert (info.size, info.is_directory, info.mode) == (6, False, "0644")
    assert isinstance(info.modified, datetime) and isinstance(info.created, datetime)


def test_deleting_a_non_empty_directory_needs_recursive(node_dir):
    root, task = node_dir
    files = files_of(FileSystemStorage(location=root / "nodes"))
    assert files.delete("wd", recursive=False) is False
    assert files.delete("wd", recursive=True) is True
    assert not (task / "wd").exists()


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("stdout.txt", "stdout.txt"),
        ("wd/a/b.txt", "wd/a/b.txt"),
        ("./wd//x", "wd/x"),
        ("../other/stdout.txt", None),
        ("wd/../../x", None),
        ("", None),
        ("/", None),
    ],
)
def test_a_file_path_cannot_leave_the_task_directory(path, clean):
    assert clean_name(path) == clean


def test_the_local_storage_needs_no_publishing_and_another_gets_a_copy(node_dir, tmp_path):
    root, task = node_dir
    assert is_local_to(FileSystemStorage(location=root / "nodes"), root / "nodes")
    shared = FileSystemStorage(location=tmp_path / "shared")
    assert not is_local_to(shared, root / "nodes")
    key = layout.storage_key("n1", "j", "t")
    assert publish_dir(shared, root / "nodes", key) == 3
    (task / "stdout.txt").write_text("hello again\n")
    publish_dir(shared, root / "nodes", key)  # replaces, never "stdout_x1y2.txt"
    files = files_of(shared)
    assert files.open("stdout.txt").read() == b"hello again\n"
    assert [f.name for f in files.list(recursive=True)] == [
        "stderr.txt",
        "stdout.txt",
        "wd",
        "wd/sub",
        "wd/sub/deep.txt",
    ]
    unpublish_dir(shared, key)
    assert not files.exists()
