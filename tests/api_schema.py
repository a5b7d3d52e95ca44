"""Every answer of the REST API and the partner webhooks, in every test, checked against the
published OpenAPI schema: a test client that validates each /api/v1/ response it receives.

The schema is generated once, like /api/schema/ serves it, and turned from OpenAPI 3.0
(`nullable`) into JSON Schema. An operation or status code the schema does not describe
fails the test too: the schema must describe everything the server answers.
"""

import functools

import orjson
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator, FormatChecker

API_PREFIX = "/api/v1/"


@functools.cache
def published_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _json_schema(schema):
    """OpenAPI 3.0's schema objects as JSON Schema: `nullable: true` becomes `null` allowed."""
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _json_schema(value) for key, value in schema.items()}
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _components() -> dict:
    return _json_schema(published_schema().get("components", {}))


def response_schema(route: str, method: str, status: int) -> dict | None:
    """The JSON Schema of the answer, or None when the operation declares no body for it."""
    path = "/" + route.replace("<str:", "{").replace(">", "}")
    operation = published_schema()["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"the schema has no operation {method} {path}"
    responses = operation["responses"]
    answer = responses.get(str(status))
    assert answer is not None, f"{method} {path}: {status} is not a documented answer"
    content = answer.get("content", {}).get("application/json")
    return None if content is None else content["schema"]


def request_validator(path: str, method: str) -> Draft202012Validator:
    """A JSON Schema validator of the operation's request body, as the schema publishes it."""
    operation = published_schema()["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator(
        {**_json_schema(schema), "components": _components()}, format_checker=FormatChecker()
    )


def assert_matches_schema(response) -> None:
    request = response.request
    match = response.resolver_match
    schema = response_schema(match.route, request["REQUEST_METHOD"], response.status_code)
    if schema is None:
        assert not response.content, f"{match.route}: undocumented body {response.content[:200]}"
        return
    body = orjson.loads(response.content)
    validator = Draft202012Validator(
        {**_json_schema(schema), "components": _components()}, format_checker=FormatChecker()
    )
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, (
        f"{request['REQUEST_METHOD']} {request['PATH_INFO']} → {response.status_code} breaks the "
        f"schema: {errors[0].message} at {list(errors[0].absolute_path)}"
    )


class SchemaCheckedClient(Client):
    """Django's test client; every /api/v1/ answer is validated against the schema."""

    def request(self, **request):
        response = super().request(**request)
        if request.get("PATH_INFO", "").startswith(API_PREFIX) and response.resolver_match:
            assert_matches_schema(response)
        return response
