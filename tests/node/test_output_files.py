"""How an output file's filePattern is resolved (tasks/node/output_files.py), as Batch
resolves it: relative to wd/, `*` `?` `**` and classes, dot files only when named, $VAR
from the task's environment, a plain path to `path` or its own name, a pattern's files
under `path` as a folder; never out of the task directory. And which outputs a command's
exit code calls for. (The uploads themselves: tests/storage/test_task_files.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.node import output_files


@pytest.fixture
def task_dir(tmp_path) -> Path:
    root = tmp_path / "task"
    for name, text in {
        "stdout.txt": "o",
        "stderr.txt": "e",
        "wd/a.txt": "a",
        "wd/b.txt": "b",
        "wd/.hidden.txt": "h",
        "wd/logs/x.log": "x",
        "wd/logs/deep/y.log": "y",
        "wd/img/1.png": "1",
        "wd/img/22.png": "2",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def names(task_dir: Path, pattern: str, path: str = "") -> list[tuple[str, str]]:
    found = output_files.resolve(str(task_dir), str(task_dir / "wd"), pattern, path)
    return [(os.path.relpath(f, task_dir), blob) for f, blob in found]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("a.txt", "", [("wd/a.txt", "a.txt")]),
        ("a.txt", "results/final.txt", [("wd/a.txt", "results/final.txt")]),
        ("../stdout.txt", "", [("stdout.txt", "stdout.txt")]),
        ("*.txt", "", [("wd/a.txt", "a.txt"), ("wd/b.txt", "b.txt")]),
        (".*.txt", "", [("wd/.hidden.txt", ".hidden.txt")]),
        ("?.txt", "out", [("wd/a.txt", "out/a.txt"), ("wd/b.txt", "out/b.txt")]),
        (
            "logs/**/*.log",
            "all",
            [("wd/logs/deep/y.log", "all/deep/y.log"), ("wd/logs/x.log", "all/x.log")],
        ),
        ("img/[0-9].png", "", [("wd/img/1.png", "1.png")]),
        (
            "../std*.txt",
            "logs/",
            [("stderr.txt", "logs/stderr.txt"), ("stdout.txt", "logs/stdout.txt")],
        ),
    ],
)
def test_patterns_resolve_as_batch_resolves_them(task_dir, pattern, path, expected):
    assert names(task_dir, pattern, path) == expected


def test_environment_variables_are_expanded(task_dir, monkeypatch):
    monkeypatch.setenv("WHICH", "b")
    assert names(task_dir, "$WHICH.txt") == [("wd/b.txt", "b.txt")]


@pytest.mark.parametrize("pattern", ["missing.txt", "*.csv", "logs"])
def test_a_pattern_that_matches_no_file_fails(task_dir, pattern):
    with pytest.raises(output_files.Failed) as failed:
        names(task_dir, pattern)
    assert failed.value.code == "FileUploadMiscError" and "No file matches" in failed.value.message


@pytest.mark.parametrize("pattern", ["../../*", "/etc/passwd", "../../task/../other.txt"])
def test_a_pattern_may_not_leave_the_task_directory(task_dir, pattern):
    with pytest.raises(output_files.Failed) as failed:
        names(task_dir, pattern)
    assert (
        failed.value.code == "FileUploadMiscError"
        and "leaves the task directory" in failed.value.message
    )


def test_a_link_out_of_the_task_directory_is_not_followed(task_dir, tmp_path):
    (tmp_path / "secret.txt").write_text("host secret")
    (task_dir / "wd/leak.txt").symlink_to(tmp_path / "secret.txt")
    for pattern in ("leak.txt", "*.txt"):
        with pytest.raises(output_files.Failed) as failed:
            names(task_dir, pattern)
        assert "link out of the task directory" in failed.value.message


@pytest.mark.parametrize(
    ("exit_code", "expected"),
    [
        (0, ["success", "completion"]),
        (3, ["failure", "completion"]),
        (None, ["failure", "completion"]),
    ],
)
def test_the_exit_code_decides_which_outputs_upload(exit_code, expected):
    specs = [
        {"filePattern": name, "uploadOptions": {"uploadCondition": f"task{name}"}}
        for name in ("success", "failure", "completion")
    ]
    assert [s["filePattern"] for s in output_files.wanted(specs, exit_code=exit_code)] == expected
