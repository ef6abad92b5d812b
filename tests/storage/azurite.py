"""Real Blob storage for tests: Azurite (the Azure Storage emulator, npm package `azurite`).

The session fixture `azurite` starts `azurite-blob` on a free port with a throwaway
location and yields an `Azurite`: its connection string, and helpers that make containers,
blobs and SAS URLs with azure-storage-blob. Azurite is looked for at $BATCHSITE_AZURITE
(the `azurite-blob` program), then in $HOME/.cache/batchsite-azurite (where .ci/run
installs it: `npm install --prefix ~/.cache/batchsite-azurite azurite`), then on PATH.
Without it the tests skip with the reason, except under BATCHSITE_REQUIRE_AZURITE=1
(`.ci/run` sets it), where they fail: CI never lacks Azurite.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

REQUIRED = os.environ.get("BATCHSITE_REQUIRE_AZURITE") == "1"
# Azurite's well-known development account (its documentation publishes the key).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def program() -> str | None:
    candidates = [
        os.environ.get("BATCHSITE_AZURITE", ""),
        str(Path.home() / ".cache/batchsite-azurite/node_modules/.bin/azurite-blob"),
        shutil.which("azurite-blob") or "",
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"Azurite is required (BATCHSITE_REQUIRE_AZURITE=1): {reason}")
    pytest.skip(reason)


@dataclass
class Azurite:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container(self, prefix: str = "c") -> str:
        """A new container's name (every test gets its own)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.service().create_container(name)
        return name

    def put(self, container: str, name: str, data: bytes) -> None:
        self.service().get_blob_client(container, name).upload_blob(data, overwrite=True)

    def get(self, container: str, name: str) -> bytes:
        return self.service().get_blob_client(container, name).download_blob().readall()

    def names(self, container: str) -> list[str]:
        return sorted(b.name for b in self.service().get_container_client(container).list_blobs())

    def container_sas_url(
        self, container: str, *, read: bool = False, write: bool = False, list_: bool = False
    ) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT,
            container,
            account_key=KEY,
            expiry=_expiry(),
            permission=ContainerSasPermissions(read=read, write=write, list=list_, create=write),
        )
        return f"{self.endpoint}/{container}?{sas}"

    def blob_sas_url(self, container: str, name: str) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        sas = generate_blob_sas(
            ACCOUNT,
            container,
            name,
            account_key=KEY,
            expiry=_expiry(),
            permission=BlobSasPermissions(read=True),
        )
        return f"{self.endpoint}/{container}/{name}?{sas}"


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(hours=2)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    found = program()
    if found is None:
        _unavailable(
            "Azurite is not installed: npm install --prefix ~/.cache/batchsite-azurite azurite "
            "(or set BATCHSITE_AZURITE to its azurite-blob program)"
        )
    try:
        import azure.storage.blob  # noqa: F401
    except ImportError:
        _unavailable("azure-storage-blob is not installed (pip install -e .)")
    location = tmp_path_factory.mktemp("azurite")
    port = _free_port()
    log = open(location / "azurite.log", "wb")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [
            found,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            said = (location / "azurite.log").read_text(errors="replace")[-500:]
            _unavailable(f"Azurite did not start on port {port}: {said.strip() or 'no output'}")
        time.sleep(0.1)
    try:
        yield Azurite(endpoint=f"http://127.0.0.1:{port}/{ACCOUNT}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
