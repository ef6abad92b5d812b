"""Task file calls (REFERENCE §11): list a task's directory, get a file (a range of it with
ocp-range, still answered 200), its properties (HEAD), delete it.

Files are read through the task-file storage (tasks.node.storage), never from a node's
disk directly, so agents on other machines can publish them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from tasks import queries
from tasks.errors import BatchError
from tasks.node.storage import FileInfo, TaskFiles, clean_name
from tasks.operations.attempts import can_read_task_files
from tasks.timefmt import format_datetime_wire, format_http_date

from . import odata
from .base import BatchApiView
from .conditional import check_read
from .render import task_url

CHUNK = 64 * 1024
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def _task_files(view: BatchApiView, job_id: str, task_id: str):
    job = queries.get_job(view.account, job_id)
    task = queries.get_task(job, task_id)
    error = can_read_task_files(task)
    if error:
        raise error
    return job, task, TaskFiles.of_task(task)


def _file_url(base: str, job_id: str, task_id: str, name: str) -> str:
    return f"{task_url(base, job_id, task_id)}/files/{quote(name, safe='')}"


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


class TaskFileListApi(BatchApiView):
    @extend_schema(summary="List Task Files")
    def get(self, request, job_id, task_id):
        job, task, files = _task_files(self, job_id, task_id)
        prefix = odata.file_name_prefix(self.params.get("$filter", ""))
        recursive = self.params.get("recursive", "false").lower() == "true"
        after, limit = self.after_key(), self.page_size()
        entries = [f for f in files.list(recursive=recursive)
                   if f.name.startswith(prefix) and (after is None or f.name > after)]
        page = entries[:limit]
        items = [self._entry(job.job_id, task.task_id, f) for f in page]
        return self.envelope(items, metadata="files", last_key=page[-1].name if page else None,
                             more=len(entries) > limit)

    def _entry(self, job_id: str, task_id: str, info: FileInfo) -> dict:
        entry = {"name": info.name, "url": _file_url(self.base_url, job_id, task_id, info.name),
                 "isDirectory": info.is_directory}
        if not info.is_directory:
            properties = {"creationTime": format_datetime_wire(info.created),
                          "lastModified": format_datetime_wire(info.modified),
                          "contentLength": _int64(info.size, self.api_version),
                          "contentType": "application/octet-stream",
                          "fileMode": info.mode}
            entry["properties"] = {k: v for k, v in properties.items() if v is not None}
        return entry


class TaskFileApi(BatchApiView):
    @extend_schema(summary="Get Task File", responses={200: bytes})
    def get(self, request, job_id, task_id, file_path):
        job, task, files, name, info = self._file(job_id, task_id, file_path)
        if info.is_directory:
            raise BatchError.operation_invalid_for_state(
                "The path is a directory: list its files with List Task Files.")
        start, end = self._range(info.size)
        response = StreamingHttpResponse(self._read(files, name, start, end), content_type="application/octet-stream")
        response["Content-Length"] = str(end - start)
        return self._headers(response, job.job_id, task.task_id, info)

    @extend_schema(summary="Get Task File Properties", responses={200: None})
    def head(self, request, job_id, task_id, file_path):
        job, task, _, _, info = self._file(job_id, task_id, file_path)
        response = HttpResponse(b"", content_type="application/octet-stream")
        response["Content-Length"] = str(info.size)
        return self._headers(response, job.job_id, task.task_id, info)

    @extend_schema(summary="Delete Task File", responses={200: None})
    def delete(self, request, job_id, task_id, file_path):
        _, _, files, name, info = self._file(job_id, task_id, file_path, conditional=False)
        recursive = self.params.get("recursive", "false").lower() == "true"
        if not files.delete(name, recursive=recursive):
            raise BatchError.operation_invalid_for_state(
                "The directory is not empty: delete it with recursive=true.")
        return Response(None, status=200)

    # --- helpers -------------------------------------------------------------------------

    def _file(self, job_id, task_id, file_path, *, conditional: bool = True):
        job, task, files = _task_files(self, job_id, task_id)
        name = clean_name(file_path)
        info = files.stat(name) if name else None
        if info is None:
            raise BatchError.file_not_found()
        if conditional and info.modified is not None:
            check_read(self.request._request.META, _Stamp(info.modified), dates_only=True)
        return job, task, files, name, info

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
    def _read(files: TaskFiles, name: str, start: int, end: int):
        handle = files.open(name)
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

    def _headers(self, response, job_id: str, task_id: str, info: FileInfo):
        response["ocp-batch-file-isdirectory"] = "true" if info.is_directory else "false"
        response["ocp-batch-file-url"] = _file_url(self.base_url, job_id, task_id, info.name)
        if info.mode:
            response["ocp-batch-file-mode"] = info.mode
        if info.created is not None:
            response["ocp-creation-time"] = format_http_date(info.created)
        if info.modified is not None:
            response["Last-Modified"] = format_http_date(info.modified)
        response["ETag"] = _etag(info)
        return response
