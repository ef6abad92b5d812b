"""Task and node file calls (REFERENCE §11): list a task's directory or a node's root, get a
file (a range of it with ocp-range, still answered 200), its properties (HEAD), delete it.

Files are read through the task-file storage (tasks.nodehost.storage), never from a node's
disk directly, so agents on other machines can publish them; the storage never follows a
symbolic link and bounds every listing. A link (or a FIFO) a task made is listed as a file
entry, as `ls -l` shows it, and its properties answer HEAD, but Get refuses to read it.
Responses with file bytes are sandboxed (tasks.file_responses).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from tasks.errors import BatchError
from tasks.file_responses import file_bytes
from tasks.nodehost.storage import LINK, FileInfo, TaskFiles, clean_name
from tasks.operations.task_files import can_read_task_files
from tasks.queries.jobs import get_job_task
from tasks.queries.nodes import get_node
from tasks.queries.pools import get_pool
from tasks.timefmt import format_datetime_wire, format_http_date

from . import odata
from .base import BatchApiView
from .conditional import check_read
from .render import node_url, task_url

CHUNK = 64 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass
class _Where:
    """The directory a file call works in, and the URL its entries are named under."""

    files: TaskFiles
    url: str  # .../files


def _task_files(view: BatchApiView, job_id: str, task_id: str) -> _Where:
    job, task = get_job_task(view.account, job_id, task_id)
    error = can_read_task_files(task)
    if error:
        raise error
    return _Where(
        TaskFiles.of_task(task), f"{task_url(view.base_url, job.job_id, task.task_id)}/files"
    )


def _node_files(view: BatchApiView, pool_id: str, node_id: str) -> _Where:
    """A node of the caller's account (PoolNotFound / NodeNotFound otherwise): its root."""
    node = get_node(get_pool(view.account, pool_id), node_id)
    return _Where(
        TaskFiles.of_node(node), f"{node_url(view.base_url, node.pool.pool_id, node.node_id)}/files"
    )


def _file_url(files_url: str, name: str) -> str:
    return f"{files_url}/{quote(name, safe='')}"


def _int64(value: int, version: str):
    return str(value) if version == "2025-06-01" else value


@dataclass
class _Stamp:
    """What the conditional-header check reads of a file."""

    last_modified: datetime
    etag: str = ""


def _etag(info: FileInfo) -> str:
    stamp = int(info.modified.timestamp() * 1_000_000) if info.modified else 0
    return f"0x8D{stamp:X}{info.size:X}"


class _FileListApi(BatchApiView):
    def list_files(self, where: _Where):
        """One page of entries: the top level, or everything with recursive=true, whose name
        starts with $filter's startswith(name,'...'). A page the storage's budget cut short
        still carries an odata.nextLink that goes on from where it stopped."""
        prefix = odata.file_name_prefix(self.params.get("$filter", ""))
        recursive = self.params.get("recursive", "false").lower() == "true"
        page = where.files.list(
            recursive=recursive, prefix=prefix, after=self.after_key(), limit=self.page_size()
        )
        items = [self._entry(where.url, f) for f in page]
        return self.envelope(items, metadata="files", last_key=page.resume, more=page.more)

    def _entry(self, files_url: str, info: FileInfo) -> dict:
        entry = {
            "name": info.name,
            "url": _file_url(files_url, info.name),
            "isDirectory": info.is_directory,
        }
        if not info.is_directory:
            properties = {
                "creationTime": format_datetime_wire(info.created),
                "lastModified": format_datetime_wire(info.modified),
                "contentLength": _int64(info.size, self.api_version),
                "contentType": "application/octet-stream",
                "fileMode": info.mode,
            }
            entry["properties"] = {k: v for k, v in properties.items() if v is not None}
        return entry


class TaskFileListApi(_FileListApi):
    @extend_schema(summary="List Task Files")
    def get(self, request, job_id, task_id):
        return self.list_files(_task_files(self, job_id, task_id))


class NodeFileListApi(_FileListApi):
    @extend_schema(summary="List Compute Node Files")
    def get(self, request, pool_id, node_id):
        return self.list_files(_node_files(self, pool_id, node_id))


class _FileApi(BatchApiView):
    @file_bytes
    def get_file(self, where: _Where, file_path: str):
        """The file's bytes (ocp-range: a part of them, still 200). 404 FileNotFound; 409
        OperationInvalidForCurrentState for a directory, a link or a FIFO, which have none
        to give; 416 InvalidRange."""
        name, info = self._file(where, file_path)
        if not info.is_file:
            raise BatchError.operation_invalid_for_state(_unreadable(info))
        start, end = self._range(info.size)
        handle = self._open(where.files, name)  # before the response: a failure is still an error
        response = StreamingHttpResponse(
            self._read(handle, start, end), content_type="application/octet-stream"
        )
        response["Content-Length"] = str(end - start)
        return self._headers(response, where, info)

    @file_bytes
    def file_properties(self, where: _Where, file_path: str):
        _, info = self._file(where, file_path)
        response = HttpResponse(b"", content_type="application/octet-stream")
        response["Content-Length"] = str(info.size)
        return self._headers(response, where, info)

    def delete_file(self, where: _Where, file_path: str):
        """Delete a file or a link (never its target), or a directory with recursive=true,
        without following any link inside it. 409 OperationInvalidForCurrentState for a
        non-empty directory without recursive, or what the node's disk refused."""
        name, _ = self._file(where, file_path, conditional=False)
        recursive = self.params.get("recursive", "false").lower() == "true"
        try:
            deleted = where.files.delete(name, recursive=recursive)
        except FileNotFoundError:
            raise BatchError.file_not_found() from None
        except OSError as e:
            raise BatchError.operation_invalid_for_state(
                f"The file could not be deleted: {e.strerror}."
            ) from None
        if not deleted:
            raise BatchError.operation_invalid_for_state(
                "The directory is not empty: delete it with recursive=true."
            )
        return Response(None, status=200)

    # --- helpers -------------------------------------------------------------------------

    def _file(
        self, where: _Where, file_path: str, *, conditional: bool = True
    ) -> tuple[str, FileInfo]:
        name = clean_name(file_path)
        info = where.files.stat(name) if name else None
        if info is None:
            raise BatchError.file_not_found()
        if conditional and info.modified is not None:
            check_read(self.request._request.META, _Stamp(info.modified), dates_only=True)
        return name, info

    @staticmethod
    def _open(files: TaskFiles, name: str):
        try:
            return files.open(name)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                raise BatchError.file_not_found() from None  # gone, or swapped for a link
            raise BatchError.operation_invalid_for_state(
                f"The file cannot be read: {e.strerror}."
            ) from None

    def _range(self, size: int) -> tuple[int, int]:
        """ocp-range `bytes=start-end` (end inclusive; `start-` to the end, `-n` the last
        n bytes) as a half-open [start, end). A range outside the file is 416 InvalidRange."""
        raw = self.request._request.META.get("HTTP_OCP_RANGE")
        if not raw:
            return 0, size
        m = _RANGE.match(raw)
        if not m or (m.group(1) == "" and m.group(2) == ""):
            raise BatchError.invalid_header("ocp-range", raw)
        first, last = m.group(1), m.group(2)
        if first == "":
            start, end = max(0, size - int(last)), size
        else:
            start = int(first)
            end = size if last == "" else min(size, int(last) + 1)
            if last != "" and int(last) < start:
                raise BatchError.invalid_header("ocp-range", raw)
        if start >= size and size > 0 or (size == 0 and start > 0):
            raise BatchError.invalid_range()
        return start, end

    @staticmethod
    def _read(handle, start: int, end: int):
        try:
            handle.seek(start)
            left = end - start
            while left > 0:
                data = handle.read(min(CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            handle.close()

    def _headers(self, response, where: _Where, info: FileInfo):
        response["ocp-batch-file-isdirectory"] = "true" if info.is_directory else "false"
        response["ocp-batch-file-url"] = _file_url(where.url, info.name)
        if info.mode:
            response["ocp-batch-file-mode"] = info.mode
        if info.created is not None:
            response["ocp-creation-time"] = format_http_date(info.created)
        if info.modified is not None:
            response["Last-Modified"] = format_http_date(info.modified)
        response["ETag"] = _etag(info)
        return response


def _unreadable(info: FileInfo) -> str:
    if info.is_directory:
        return "The path is a directory: list its files with List Task Files or List Compute Node Files."
    if info.kind == LINK:
        return "The path is a symbolic link, which batchsite never follows: get the file it points to by its own path."
    return "The path is not a regular file (a FIFO, a socket or a device): it has no bytes to get."


class TaskFileApi(_FileApi):
    @extend_schema(summary="Get Task File", responses={200: bytes})
    def get(self, request, job_id, task_id, file_path):
        return self.get_file(_task_files(self, job_id, task_id), file_path)

    @extend_schema(summary="Get Task File Properties", responses={200: None})
    def head(self, request, job_id, task_id, file_path):
        return self.file_properties(_task_files(self, job_id, task_id), file_path)

    @extend_schema(summary="Delete Task File", responses={200: None})
    def delete(self, request, job_id, task_id, file_path):
        return self.delete_file(_task_files(self, job_id, task_id), file_path)


class NodeFileApi(_FileApi):
    @extend_schema(summary="Get Compute Node File", responses={200: bytes})
    def get(self, request, pool_id, node_id, file_path):
        return self.get_file(_node_files(self, pool_id, node_id), file_path)

    @extend_schema(summary="Get Compute Node File Properties", responses={200: None})
    def head(self, request, pool_id, node_id, file_path):
        return self.file_properties(_node_files(self, pool_id, node_id), file_path)

    @extend_schema(summary="Delete Compute Node File", responses={200: None})
    def delete(self, request, pool_id, node_id, file_path):
        return self.delete_file(_node_files(self, pool_id, node_id), file_path)
