"""drf-spectacular extensions: Shared Key in the schema, and the api-version parameter
every Batch operation takes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .base import SUPPORTED_API_VERSIONS


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
        "name": "api-version", "in": "query", "required": True,
        "schema": {"type": "string", "enum": list(SUPPORTED_API_VERSIONS)},
    }
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation.setdefault("parameters", []).insert(0, parameter)
    return result
