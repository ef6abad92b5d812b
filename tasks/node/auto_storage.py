"""An account's auto-storage: resourceFiles' autoStorageContainerName, as Batch resolves it.

Batch reads such a container from the storage account linked to the Batch account. Here
the link is BATCHSITE_AUTO_STORAGE (settings: account name to connection string); the
agent turns the container name into a container URL with a short-lived read/list SAS made
with azure-storage-blob, so the download program (tasks/node/resource_files.py), which runs
with the task's environment, never sees the account key. An account without auto-storage
keeps the name: the download fails with ResourceContainerAccessDenied, saying so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings

SAS_LIFETIME = timedelta(
    hours=2
)  # long enough for the download, short enough to be worth little later


def container_urls(files: list[list], *, account: str) -> list[list]:
    """The [directory, resourceFile] pairs with each autoStorageContainerName of `account`
    replaced by a storageContainerUrl with a SAS (blobPrefix, filePath, fileMode kept)."""
    connection = settings.BATCHSITE_AUTO_STORAGE.get(account)
    if not connection or not any("autoStorageContainerName" in spec for _, spec in files):
        return files
    resolved = []
    for directory, spec in files:
        if "autoStorageContainerName" in spec:
            name = spec["autoStorageContainerName"]
            spec = {k: v for k, v in spec.items() if k != "autoStorageContainerName"}
            spec["storageContainerUrl"] = container_url(connection, name)
        resolved.append([directory, spec])
    return resolved


def container_url(connection: str, container: str) -> str:
    """The URL of `container` in the storage account of `connection`, with a SAS that
    reads and lists it for SAS_LIFETIME."""
    from azure.storage.blob import (
        BlobServiceClient,
        ContainerSasPermissions,
        generate_container_sas,
    )

    service = BlobServiceClient.from_connection_string(connection)
    sas = generate_container_sas(
        service.account_name,
        container,
        account_key=service.credential.account_key,
        permission=ContainerSasPermissions(read=True, list=True),
        start=datetime.now(UTC) - timedelta(minutes=5),
        expiry=datetime.now(UTC) + SAS_LIFETIME,
    )
    return f"{service.get_container_client(container).url}?{sas}"
