"""The Batch JSON renderer, chosen whatever the Accept header says (the SDKs send
`*/*`, `application/json` or `application/octet-stream`; none may get a 406)."""

import json

from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer

CONTENT_TYPE = "application/json;odata=minimalmetadata"


class BatchJSONRenderer(BaseRenderer):
    # DRF writes the renderer's media_type as the response Content-Type.
    media_type = CONTENT_TYPE
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        # "replace": an error body may quote a client's lone surrogate; never fail on it.
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "replace"
        )


class AlwaysBatchJSON(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], CONTENT_TYPE
