"""OpenAPI security schemes of the REST API: the organization's key, as a header or a bearer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .authentication import API_KEY_HEADER


class XApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "setter.api.authentication.XApiKeyAuthentication"
    name = "xApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": API_KEY_HEADER,
            "description": "Any active API key of your organization.",
        }


class BearerApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "setter.api.authentication.BearerApiKeyAuthentication"
    name = "bearerApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Any active API key of your organization, as a bearer token.",
        }


REST_PREFIX = "/api/v1/"
PARTNER_WEBHOOK_PREFIX = "/api/v1/webhooks/"


def _error_content(name: str) -> dict:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def document_errors(result, generator, request, public):
    """drf-spectacular hook: the errors every REST API operation can answer, in their shape.

    Any call can be a 401 (the key), any call with a path id or a body a 400 (a control
    character in an id, an unknown key, a NUL); an error an operation lists without a body
    has the API's error body.
    """
    for path, item in result.get("paths", {}).items():
        if not path.startswith(REST_PREFIX) or path.startswith(PARTNER_WEBHOOK_PREFIX):
            continue
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.setdefault("401", {"description": "Missing or wrong API key"})
            if "{" in path or "requestBody" in operation:
                responses.setdefault("400", {"description": "A field is wrong: the message says"})
            for code, answer in responses.items():
                if code.startswith("4") and "content" not in answer:
                    answer["content"] = _error_content(
                        "Unauthorized" if code == "401" else "ApiError"
                    )
    return result


# A string without NUL, as JSON Schema's pattern (ECMA 262 and Python's re both read it).
NO_NUL_PATTERN = "^[^\\u0000]*$"


def body_rules(result, generator, request, public):
    """drf-spectacular hook: the two rules the server applies to every body
    (setter.api.contract), written into every request schema: each object a body may hold
    declares `additionalProperties: false`, and each string `pattern: NO_NUL_PATTERN`.

    Free-form objects (query filters, a segment's filter) are not components and stay open.
    """
    components = result.get("components", {}).get("schemas", {})
    pending = [
        content["schema"]
        for item in result.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict) and "requestBody" in operation
        for content in operation["requestBody"]["content"].values()
    ]
    seen = set()
    while pending:
        schema = pending.pop()
        if not isinstance(schema, dict):
            continue
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen or name not in components:
                continue
            seen.add(name)
            schema = components[name]
            if "properties" in schema:
                schema["additionalProperties"] = False
        if schema.get("type") == "string":
            schema.setdefault("pattern", NO_NUL_PATTERN)
        pending.extend(schema.get("properties", {}).values())
        pending.append(schema.get("items"))
        for key in ("allOf", "oneOf", "anyOf"):
            pending.extend(schema.get(key, []))
    return result
