"""The connection behind the API, as `serve` runs it: gunicorn with gthread workers and
batchsite/gunicorn_conf.py (issue 8, item 10).

An Add Task Collection over 1 MB was answered 413 before its body was read, saying
`Connection: keep-alive`, and then the connection was closed under the client: the SDK's
create_tasks, which halves a chunk after a 413 and sends it on the same connection, failed
with RemoteDisconnected and that chunk's tasks were never added. After any early answer the
body is now drained (up to a bound), or the answer says `Connection: close` and means it.
Request lines and headers gunicorn refuses get a Batch error body, not its HTML page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings

from tasks.management.commands.serve import _gunicorn
from tests.agents import database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]
API = "2025-06-01"
_STANDARD = [
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
]


@pytest.fixture
def server(sdk_account, tmp_path):
    """gunicorn as `serve` starts it (gthread, 2 workers x 4 threads) with the project's
    config file, on a free port, against the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "BATCHSITE_DATA_DIR": str(settings.DATA_DIR),
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - the child owns it
    # serve's own command line for gunicorn, without its per-data-dir control socket.
    argv = _gunicorn("127.0.0.1", port, 2)
    argv = argv[: argv.index("--control-socket")] if "--control-socket" in argv else argv
    proc = subprocess.Popen(
        [*argv, "--no-control-socket"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()

    def up():
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(up, timeout=60, message="gunicorn to listen")
    yield SimpleNamespace(port=port, account=sdk_account, url=f"http://127.0.0.1:{port}")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SimpleNamespace:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def signed(account, method: str, url: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    """The bytes of one HTTP/1.1 request, signed as the SDKs sign."""
    hdrs = {"ocp-date": formatdate(usegmt=True), "Host": "127.0.0.1"}
    if method not in ("GET", "HEAD"):
        hdrs["Content-Length"] = str(len(body))
    if body:
        hdrs["Content-Type"] = "application/json; odata=minimalmetadata"
    hdrs.update(headers or {})
    lowered = {k.lower(): v for k, v in hdrs.items()}
    text = method + "\n" + "\n".join(lowered.get(h, "") for h in _STANDARD) + "\n"
    text += "".join(f"{k}:{v}\n" for k, v in sorted(lowered.items()) if "ocp-" in k)
    parsed = urlparse(url)
    text += f"/{account.name}{parsed.path}"
    for name, values in sorted(parse_qs(parsed.query).items()):
        text += f"\n{name}:{values[0]}"
    digest = hmac.new(base64.b64decode(account.primary_key), text.encode(), hashlib.sha256).digest()
    hdrs["Authorization"] = f"SharedKey {account.name}:{base64.b64encode(digest).decode()}"
    head = (
        f"{method} {url} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    )
    return head.encode() + body


def read_response(sock) -> tuple[int, dict[str, str], bytes]:
    f = sock.makefile("rb")
    status = f.readline()
    if not status:
        raise ConnectionError("the server closed the connection without an answer")
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return int(status.split()[1]), headers, body


def big_collection(n: int = 100, size: int = 12_000) -> bytes:
    return json.dumps(
        {"value": [{"id": f"t{i}", "commandLine": "/bin/true " + "x" * size} for i in range(n)]}
    ).encode()


def add_job(server, job_id: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(
            signed(
                server.account,
                "POST",
                f"/jobs?api-version={API}",
                json.dumps({"id": job_id, "poolInfo": {"poolId": "nopool"}}).encode(),
            )
        )
        assert read_response(s)[0] == 201


def test_after_a_413_the_same_connection_serves_the_next_request(server):
    add_job(server, "j413")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            signed(
                server.account,
                "POST",
                f"/jobs/j413/addtaskcollection?api-version={API}",
                big_collection(),
            )
        )
        status, headers, body = read_response(s)
        assert (status, json.loads(body)["code"]) == (413, "RequestBodyTooLarge")
        assert headers["connection"] == "keep-alive"  # so it must keep it
        time.sleep(0.5)
        s.sendall(signed(server.account, "GET", f"/jobs/j413?api-version={API}"))
        assert read_response(s)[0] == 200


def test_after_any_early_answer_the_connection_serves_the_next_request(server):
    # A refusal before the body is read (here: a bad signature on a 900 KB body).
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        request = signed(
            server.account,
            "POST",
            f"/jobs/nosuch/addtaskcollection?api-version={API}",
            big_collection(70),
        )
        s.sendall(request.replace(b"SharedKey sdkacct:", b"SharedKey sdkacct:A"))
        status, headers, _ = read_response(s)
        assert status == 403 and headers["connection"] == "keep-alive"
        s.sendall(signed(server.account, "GET", f"/jobs?api-version={API}"))
        assert read_response(s)[0] == 200


def test_a_body_too_large_to_drain_gets_its_answer_and_connection_close(server):
    add_job(server, "jhuge")
    body = b'{"value": [' + b" " * (40 * 1024 * 1024) + b"]}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        request = signed(
            server.account, "POST", f"/jobs/jhuge/addtaskcollection?api-version={API}", body
        )
        sender = threading.Thread(target=lambda: _send_quietly(s, request), daemon=True)
        sender.start()
        status, headers, answer = read_response(s)
        assert (status, json.loads(answer)["code"]) == (413, "RequestBodyTooLarge")
        assert headers["connection"] == "close"
        sender.join(30)


def _send_quietly(sock, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server closed as it said it would


def test_the_sdk_create_tasks_splits_oversized_chunks_and_adds_every_task(server):
    from azure.batch import BatchClient
    from azure.batch import models as m
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(
        endpoint=server.url,
        retry_total=0,
        credential=AzureNamedKeyCredential(server.account.name, server.account.primary_key),
    )
    for run in range(3):
        job_id = f"split{run}"
        client.create_job(
            m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="nopool"))
        )
        tasks = [
            m.BatchTaskCreateOptions(id=f"t{i}", command_line="/bin/true " + "x" * 12_000)
            for i in range(150)
        ]
        client.create_tasks(job_id, tasks, max_concurrency=2)
        assert len(list(client.list_tasks(job_id))) == 150


def test_the_14x_add_collection_helper_splits_on_413_through_gunicorn_too(server):
    from tests.sdk.conftest import SCENARIOS14, SDK14_PYTHON

    env = dict(
        os.environ,
        BATCH_URL=server.url,
        BATCH_ACCOUNT=server.account.name,
        BATCH_KEY=server.account.primary_key,
    )
    proc = subprocess.run(
        [str(SDK14_PYTHON), str(SCENARIOS14), "bulk"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (
        out["first"] == 350
        and out["listed"] == 350
        and out["split"] == 100
        and out["wide_listed"] == 100
    )


@pytest.mark.parametrize(
    ("what", "extra", "status", "code"),
    [
        ("request line", {"query": "&$filter=" + "a" * 9000}, 414, "RequestUrlFailedToParse"),
        ("header", {"headers": {"x-long": "b" * 9000}}, 431, "InvalidInput"),
        ("headers", {"headers": {f"x-h{i}": "v" for i in range(120)}}, 431, "InvalidInput"),
    ],
)
def test_a_request_gunicorn_refuses_gets_a_batch_error_body(server, what, extra, status, code):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            signed(
                server.account,
                "GET",
                f"/jobs?api-version={API}" + extra.get("query", ""),
                headers=extra.get("headers"),
            )
        )
        got, headers, body = read_response(s)
    assert got == status
    assert (
        headers["content-type"].startswith("application/json") and headers["connection"] == "close"
    )
    error = json.loads(body)
    assert error["code"] == code and error["message"]["lang"] == "en-US"
    assert "RequestId:" in error["message"]["value"] and headers["request-id"]
