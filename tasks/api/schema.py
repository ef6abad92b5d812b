"""drf-spectacular extensions: Shared Key in the schema, and the api-version parameter
every Batch operation takes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

# Azure serves every api-version since 2017-09-01.6.0, and scripts pin old SDKs (Azure's
# Python quickstart pins azure-batch 11.0.0: 2021-06-01.14.0). From 2020-09-01.12.0
# (azure-batch 10.0.0; taskSlotsPerNode and requiredSlots replaced maxTasksPerNode) every
# property those versions send is one 2024-02-01.19.0 has under the same name, and they read
# its answers (their clients ignore what they do not know), so they are served as it is.
# Earlier ones name things differently: refused.
SUPPORTED_API_VERSIONS = (
    "2020-09-01.12.0",
    "2021-06-01.14.0",
    "2022-01-01.15.0",
    "2022-10-01.16.0",
    "2023-05-01.17.0",
    "2023-11-01.18.0",
    "2024-02-01.19.0",
    "2024-07-01.20.0",
    "2025-06-01",
)


class BatchAutoSchema(AutoSchema):
    """The schema of a Batch API view. Its bodies are declared with @extend_schema (the
    views are plain APIViews: the wire shapes live in serializers the views call, not in a
    serializer_class); what is not declared has no body, rather than a failed guess that
    logs an error. An undeclared operation id is named after its view, so two views on
    neighbouring paths never collide."""

    def get_request_serializer(self):
        return None

    def get_response_serializers(self):
        return None

    def get_operation_id(self) -> str:
        return f"{self.view.__class__.__name__.removesuffix('Api')}_{self.method.lower()}"


class SharedKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tasks.api.auth.SharedKeyAuthentication"
    name = "SharedKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "SharedKey <account>:<base64 HMAC-SHA256 of the StringToSign>, as the azure-batch "
            "SDKs sign (see the README); with an ocp-date header within 15 minutes of the server's clock.",
        }


def add_api_version(result, generator, request, public):
    """Postprocessing hook: document the api-version query parameter on every operation."""
    parameter = {
        "name": "api-version",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
    }
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation.setdefault("parameters", []).insert(0, parameter)
    return result
