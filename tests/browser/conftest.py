"""Playwright in Debian's headless Chromium against `live_server`: a seeded account with an
operator and a viewer, sign-in, screenshots of every page into screenshots/, and axe-core's
accessibility checks (`axe_violations`)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tasks.models import AccountMembership
from tasks.nodehost.storage import TaskFiles
from tasks.operations.counts import recount_job
from tasks.operations.job_schedules import add_job_schedule
from tests.factories import (
    AccountFactory,
    AttemptFactory,
    BulkOperationFactory,
    ComputeNodeFactory,
    JobFactory,
    MembershipFactory,
    PoolFactory,
    SubTaskFactory,
    TaskFactory,
    UserFactory,
)

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
# Where shot() saves: screenshots/ (git-ignored), or BATCHSITE_SCREENSHOTS.
SHOTS = Path(os.environ.get("BATCHSITE_SCREENSHOTS") or ROOT / "screenshots")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-tests-1"

# axe-core, from the npm registry: .ci/fetch-axe downloads the pinned version, checks its
# integrity and unpacks axe.min.js into ~/.cache/batchsite-axe/<version>/ (`make test` and
# .ci/run call it). BATCHSITE_AXE names another copy of axe.min.js.
AXE_VERSION = "4.14.1"
AXE_REQUIRED = os.environ.get("BATCHSITE_REQUIRE_AXE") == "1"
# What counts: WCAG 2.0-2.2 A and AA, and axe's best practices; a violation fails only at
# these impacts (moderate and minor ones are printed, not failed).
AXE_FAILING = ("critical", "serious")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, live_server):
    """Open a signed-in page: new_page("olive") (optionally dark, phone-sized or `width`
    wide, in a time zone: timezone_id="Asia/Kolkata")."""
    contexts = []

    def open_as(
        username: str,
        *,
        dark: bool = False,
        phone: bool = False,
        width: int | None = None,
        timezone_id: str | None = None,
    ):
        viewport = (
            {"width": 390, "height": 844} if phone else {"width": width or 1360, "height": 900}
        )
        context = chromium.new_context(
            viewport=viewport,
            color_scheme="dark" if dark else "light",
            base_url=live_server.url,
            **({"timezone_id": timezone_id} if timezone_id else {}),
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/web/")
        return page

    yield open_as
    for context in contexts:
        context.close()


# Predicates for page.wait_for_function are arrow functions ("() => ..."): Playwright
# evaluates a bare expression with eval, which the site's Content-Security-Policy refuses.


def axe_path() -> Path | None:
    candidates = [
        os.environ.get("BATCHSITE_AXE", ""),
        str(Path.home() / f".cache/batchsite-axe/{AXE_VERSION}/axe.min.js"),
    ]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def axe_source() -> str:
    path = axe_path()
    if path is None:
        reason = f"axe-core {AXE_VERSION} is missing: run .ci/fetch-axe (make test does)"
        if AXE_REQUIRED:
            pytest.fail(f"{reason}; BATCHSITE_REQUIRE_AXE=1")
        pytest.skip(reason)
    return path.read_text()


_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"], runOnly: {type: "tag",
    values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200),
                              summary: (n.failureSummary || "").replace(/\\s+/g, " ").slice(0, 300)}))}));
}"""


@pytest.fixture
def axe_violations(axe_source):
    """axe_violations(page) -> the page's axe-core violations (all impacts) as dicts with
    id, impact, help and nodes. axe goes in through the DevTools protocol, which the site's
    Content-Security-Policy does not govern (a <script> tag would be refused)."""

    def run(page) -> list[dict]:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(axe_source + "\n;0")
        return page.evaluate(_AXE_RUN)

    return run


def describe_violations(found: dict[str, list[dict]]) -> str:
    """Violations by page, one line per element, for a failure message."""
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']}")
            lines.extend(
                f"    {n['target']}  {n['html']}\n      {n['summary']}" for n in v["nodes"][:8]
            )
            if len(v["nodes"]) > 8:
                lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


def shot(page, name: str) -> None:
    """Save a full-page screenshot as <SHOTS>/<name>.png."""
    from playwright.sync_api import Error

    SHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SHOTS / f"{name}.png")
    try:
        page.screenshot(path=path, full_page=True)
    except Error as e:
        # Headless Chromium sometimes has no frame to copy yet ("Unable to capture
        # screenshot", seen in CI on a busy machine): once more after a frame is drawn.
        if "Unable to capture screenshot" not in str(e):
            raise
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        page.screenshot(path=path, full_page=True)


# Batch's longest id: 64 characters, without a break a browser could wrap at.
LONG_ID = ("frame_" + "0123456789abcdefghij" * 4)[:64]
LONG_JOB_ID = ("job_" + "abcdefghijklmnopqrst" * 4)[:64]


def user(username: str):
    return UserFactory(username=username)


@pytest.fixture
def site(transactional_db):
    """An account seen by operator `olive` and viewer `victor`, with a pool of nodes and a
    job of tasks in every state, a multi-instance task and a running task with output."""
    account = AccountFactory(name="demo")
    MembershipFactory(account=account, user=user("olive"), role=AccountMembership.Role.OPERATOR)
    MembershipFactory(account=account, user=user("victor"), role=AccountMembership.Role.VIEWER)
    pool = PoolFactory(account=account, pool_id="local", vm_size="local")
    nodes = [
        ComputeNodeFactory(
            pool=pool, node_id=f"local-{i}", slots=2, state="running", hostname="worker"
        )
        for i in (1, 2, 3)
    ]
    job = JobFactory(
        account=account, job_id="render", pool_id="local", display_name="Render frames"
    )
    JobFactory(account=account, job_id="nightly-etl", pool_id="local", completed=True)
    t0 = timezone.now() - timedelta(minutes=30)
    tasks = []
    for i in range(24):
        kind = ["succeeded", "failed137", "failed1", "succeeded", "active", "succeeded"][i % 6]
        node = nodes[2] if kind.startswith("failed") and i % 4 else nodes[i % 2]
        fields = {"creation_time": t0 + timedelta(seconds=i)}
        if kind != "active":
            start = t0 + timedelta(minutes=i % 12, seconds=5)
            fields.update(
                start_time=start,
                end_time=start + timedelta(seconds=40 + i * 7),
                node=node,
                node_name=node.node_id,
                pool_id="local",
                state="completed",
            )
        if kind == "succeeded":
            fields.update(exit_code=0, result="success")
        elif kind.startswith("failed"):
            code = 137 if kind == "failed137" else 1
            fields.update(
                exit_code=code,
                result="failure",
                failure_info={
                    "category": "usererror",
                    "code": "FailureExitCode",
                    "message": "The task process exited with an unexpected exit code",
                    "details": [{"name": "Message", "value": f"exit code {code}"}],
                },
            )
        task = TaskFactory.build(
            job=job, task_id=f"frame-{i:03d}", command_line=f"/bin/render --frame {i}", **fields
        )
        task.save()
        tasks.append(task)
        if kind != "active":
            AttemptFactory(
                task=task,
                node=node,
                claimed=task.start_time - timedelta(seconds=2),
                start_time=task.start_time,
                end_time=task.end_time,
                outcome="succeeded" if kind == "succeeded" else "failed",
                exit_code=task.exit_code,
            )
    multi = TaskFactory(
        job=job,
        task_id="mpi-solve",
        multi_instance=True,
        number_of_instances=3,
        state="completed",
        creation_time=t0 - timedelta(minutes=1),
        result="failure",
        exit_code=0,
        node=nodes[0],
        node_name="local-1",
        pool_id="local",
        start_time=t0,
        end_time=t0 + timedelta(minutes=3),
        failure_info={
            "category": "usererror",
            "code": "SubtaskFailed",
            "message": "Subtask 2 failed.",
        },
        spec={
            "multiInstanceSettings": {
                "numberOfInstances": 3,
                "coordinationCommandLine": "/bin/start-mpi",
            }
        },
    )
    SubTaskFactory(
        task=multi,
        subtask_id=1,
        state="completed",
        node=nodes[1],
        node_name="local-2",
        pool_id="local",
        start_time=t0,
        end_time=t0 + timedelta(minutes=3),
        exit_code=0,
        result="success",
    )
    SubTaskFactory(
        task=multi,
        subtask_id=2,
        state="completed",
        node=nodes[2],
        node_name="local-3",
        pool_id="local",
        start_time=t0,
        end_time=t0 + timedelta(minutes=1),
        exit_code=139,
        result="failure",
        failure_info={
            "category": "usererror",
            "code": "FailureExitCode",
            "message": "The task process exited with an unexpected exit code",
        },
    )
    live = TaskFactory(
        job=job,
        task_id="live-1",
        state="running",
        node=nodes[0],
        node_name="local-1",
        pool_id="local",
        start_time=timezone.now(),
        command_line="/bin/sh -c 'long job'",
    )
    AttemptFactory(
        task=live,
        node=nodes[0],
        outcome="running",
        claimed=timezone.now(),
        end_time=None,
        exit_code=None,
    )
    recount_job(job)
    return {"account": account, "job": job, "multi": multi, "tasks": tasks}


@pytest.fixture
def seeded(site, settings, tmp_path):
    """The browser tests' site, plus what the remaining pages need: a job schedule, a bulk
    run, a task blocked by a dependency, an output file, and a job and a task whose ids are
    64 characters long."""
    settings.STORAGES = {
        **settings.STORAGES,
        "taskfiles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "nodes")},
        },
    }
    job = site["job"]
    failed = next(t for t in site["tasks"] if t.task_id == "frame-001")
    out = tmp_path / "nodes" / TaskFiles.of_task(failed).prefix
    out.mkdir(parents=True, exist_ok=True)
    (out / "stderr.txt").write_text("rendering frame 1\n\x1b[31mERROR\x1b[0m: out of memory\n")
    TaskFactory(
        job=job,
        task_id="blocked-1",
        state="active",
        creation_time=timezone.now() - timedelta(minutes=5),
        spec={"dependsOn": {"taskIds": ["frame-001"]}},
    )
    add_job_schedule(
        site["account"],
        spec={
            "id": "nightly",
            "schedule": {"recurrenceInterval": timedelta(days=1)},
            "jobSpecification": {"poolInfo": {"poolId": "local"}},
        },
    )
    long_job = JobFactory(
        account=site["account"],
        job_id=LONG_JOB_ID,
        pool_id="local",
        display_name="A job with a long id and a long display name " * 3,
    )
    TaskFactory(
        job=long_job,
        task_id=LONG_ID,
        state="completed",
        result="failure",
        exit_code=1,
        node_name="local-3",
        pool_id="local",
        failure_info={"code": "FailureExitCodeWithAVeryLongName"},
        command_line="/bin/sh -c '" + "echo a very long command line; " * 10 + "'",
    )
    bulk = BulkOperationFactory(
        job=job,
        user=None,
        action="terminate",
        total=12,
        done=12,
        state="done",
        finished=timezone.now(),
    )
    return {**site, "bulk": bulk, "long": long_job}
