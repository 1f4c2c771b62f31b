"""Every HTTP answer the tests get is checked against the OpenAPI schema /api/schema/ serves.

`check_response` is called by the Django test clients (an autouse fixture in conftest.py) and by
DaphneServer.get, so a response of an operation in the schema must have a documented status and a body that
validates, with every object closed: a field the schema does not name fails too. Paths the schema does not
describe (the page, the admin) are not checked.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_URI = "urn:creatornexus:openapi"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The schema /api/schema/ serves, generated once per test process."""
    from drf_spectacular.generators import SchemaGenerator

    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return document


def closed(node: Any) -> Any:
    """A copy in which every object schema that lists its properties admits no others."""
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [closed(value) for value in node]
    return node


@functools.cache
def _registry() -> Registry:
    document = closed(copy.deepcopy(openapi_document()))
    return Registry().with_resource(SCHEMA_URI, Resource(contents=document, specification=DRAFT202012))


@functools.cache
def _operations() -> list[tuple[re.Pattern[str], str, str, dict[str, Any]]]:
    """(path regex, method, templated path, operation) for every operation in the schema."""
    operations = []
    for template, item in openapi_document()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
        for method, operation in item.items():
            operations.append((pattern, method.upper(), template, operation))
    return operations


def _operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """(templated path, operation) of the schema that serves this request, if any."""
    for pattern, op_method, template, operation in _operations():
        if op_method == method and pattern.match(path):
            return template, operation
    return None


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def check_response(method: str, path: str, status: int, content_type: str, body: Any) -> None:
    """Fail, naming the operation and the offending field, unless the schema documents this answer."""
    path = path.split("?", 1)[0]
    found = _operation_for(method.upper(), path)
    if found is None:
        return
    template, operation = found
    where = f"{method.upper()} {path} ({template})"
    response = operation["responses"].get(str(status))
    assert response is not None, (
        f"{where} answered {status}, which the OpenAPI schema does not list (it lists "
        f"{sorted(operation['responses'])}): add it with @extend_schema(responses=...) or in creatornexus/openapi.py"
    )
    content = response.get("content")
    if not content:
        return
    media_type = content_type.split(";", maxsplit=1)[0].strip()
    assert media_type in content, f"{where} answered {status} as {media_type!r}; the schema says {sorted(content)}"
    pointer = _pointer("paths", template, method.lower(), "responses", str(status), "content", media_type, "schema")
    validator = Draft202012Validator({"$ref": f"{SCHEMA_URI}#/{pointer}"}, registry=_registry())
    error = best_match(validator.iter_errors(body))
    if error is not None:
        raise AssertionError(f"{where} answered {status} off its schema at {error.json_path}: {error.message}")


def check_test_client_response(response: Any) -> None:
    """A Django test client's response (Client: a WSGI environ; AsyncClient: an ASGI scope)."""
    request = response.request
    method = request.get("REQUEST_METHOD") or request.get("method") or "GET"
    path = request.get("PATH_INFO") or request.get("path") or ""
    content_type = response.get("Content-Type", "")
    body = None
    if not getattr(response, "streaming", False) and "json" in content_type:
        body = json.loads(response.content or b"null")
    check_response(method, path, response.status_code, content_type, body)


def checked(request: Callable[..., Any]) -> Callable[..., Any]:
    """Client.request, checking what it answers."""

    @functools.wraps(request)
    def wrapper(self: Any, **kwargs: Any) -> Any:
        response = request(self, **kwargs)
        check_test_client_response(response)
        return response

    return wrapper


def checked_async(request: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """AsyncClient.request, checking what it answers."""

    @functools.wraps(request)
    async def wrapper(self: Any, **kwargs: Any) -> Any:
        response = await request(self, **kwargs)
        check_test_client_response(response)
        return response

    return wrapper
