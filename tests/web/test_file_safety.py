"""What a task writes never runs on the dashboard's origin: its files download as sandboxed
attachments or show as escaped text, links it made are never followed, and every page
carries a Content-Security-Policy without inline script or style (the real-browser checks
are in tests/browser/test_file_safety.py)."""

import pytest
from django.test import Client
from django.urls import reverse

from tasks.nodehost.storage import TaskFiles
from tests.factories import TaskFactory, UserFactory
from tests.web.conftest import HTMX, signed_in, task_url

pytestmark = pytest.mark.django_db

PAGE = b"<html><body><script>document.title = 'ran'</script><h1>report</h1></body></html>"


@pytest.fixture
def task_dir(settings, tmp_path, job):
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "nodes")},
        },
    }
    task = TaskFactory(
        job=job, succeeded=True, node_name="node-1", pool_id="p1", task_root_directory="/x/t"
    )
    root = tmp_path / "nodes" / TaskFiles.of_task(task).prefix
    (root / "wd").mkdir(parents=True)
    (root / "stdout.txt").write_text("out\n")
    (root / "wd" / "report.html").write_bytes(PAGE)
    (tmp_path / "secret_key").write_text("the host's secret\n")
    (root / "wd" / "key").symlink_to(tmp_path / "secret_key")
    return task, root


def file_url(task, name: str) -> str:
    return reverse(
        "web:task-file", args=[task.job.account.name, task.job.job_id, task.task_id, name]
    )


def policy(response) -> dict[str, str]:
    parts = [p.strip().split(" ", 1) for p in response["Content-Security-Policy"].split(";")]
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def test_a_task_file_always_downloads_as_a_sandboxed_attachment(op, task_dir):
    task, _ = task_dir
    for suffix in ("", "?download=1"):
        r = op.get(file_url(task, "wd/report.html") + suffix)
        assert r.status_code == 200 and b"".join(r.streaming_content) == PAGE
        assert r["Content-Disposition"] == 'attachment; filename="report.html"'
        assert r["Content-Type"] == "application/octet-stream"
        assert r["X-Content-Type-Options"] == "nosniff"
        assert policy(r) == {"default-src": "'none'", "sandbox": ""}


def test_a_files_name_opens_it_as_escaped_text(op, task_dir):
    task, _ = task_dir
    page = op.get(task_url("task", task)).content.decode()
    preview = task_url("task-output", task) + "?file=wd/report.html"
    assert f'href="{preview}"' in page
    shown = op.get(preview).content.decode()
    assert "&lt;script&gt;document.title" in shown and "<script>document.title" not in shown


def test_a_link_the_task_made_is_listed_as_a_link_and_never_served(op, task_dir):
    task, _ = task_dir
    page = op.get(task_url("task", task)).content.decode()
    assert '<tr data-kind="link"><td class="mono small">wd/key</td>' in page
    assert op.get(file_url(task, "wd/key")).status_code == 404
    assert "secret" not in op.get(task_url("task-output", task) + "?file=wd/key").content.decode()


def test_a_binary_file_is_not_shown_as_text(op, task_dir):
    task, root = task_dir
    (root / "wd" / "blob.bin").write_bytes(b"\x00\x01\x02garbage")
    shown = op.get(task_url("task-output", task) + "?file=wd/blob.bin").content.decode()
    assert "wd/blob.bin is a binary file" in shown and "garbage" not in shown


def test_the_file_list_says_when_it_shows_only_the_first_files(op, task_dir, monkeypatch):
    from tasks.web import files

    monkeypatch.setattr(files, "MAX_LISTED", 1)
    task, _ = task_dir
    assert "Showing the first 1 files" in op.get(task_url("task", task)).content.decode()


@pytest.mark.parametrize("path", ["/web/", "/accounts/login/", "/admin/", "/admin/login/"])
def test_pages_carry_a_policy_without_inline_script_or_style(path, op):
    staff = signed_in(UserFactory(username="root", is_staff=True, is_superuser=True))
    r = (staff if path == "/admin/" else op if path == "/web/" else Client()).get(path)
    assert r.status_code == 200
    rules = policy(r)
    assert (
        rules["default-src"] == "'self'"
        and rules["script-src"] == "'self'"
        and rules["style-src"] == "'self'"
    )
    assert rules["object-src"] == "'none'" and rules["frame-ancestors"] == "'none'"
    assert "unsafe" not in r["Content-Security-Policy"]


def test_the_csrf_cookie_is_out_of_reach_of_scripts_and_htmx_still_posts(op, job):
    r = op.get(reverse("web:jobs"))
    assert r.cookies["csrftoken"]["httponly"] is True
    page = r.content.decode()
    assert 'hx-headers=\'{"x-csrftoken": "' in page  # the token htmx sends, from the template


def test_live_regions_poll_without_an_evaluated_filter(op, job):
    TaskFactory(job=job, running=True)
    body = op.get(
        reverse("web:job", args=[job.account.name, job.job_id]), headers=HTMX
    ).content.decode()
    assert (
        'hx-trigger="every 2s" data-poll data-poll-pause="#bulk-form input[name=task]:checked"'
        in body
    )
    assert "[document" not in body
