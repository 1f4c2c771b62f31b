"""The OpenAPI contract: /api/schema/ is valid OpenAPI 3, names every route and its errors, and its docs work offline.

Every real answer of the other tests is checked against it as well (tests/openapi.py, hooked into the test
clients in conftest.py and into DaphneServer.get).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from tests.openapi import check_response, openapi_document

# Routes of the API that are not operations of it: the schema itself and its docs page.
NOT_OPERATIONS = {"/api/schema/", "/api/docs/"}
HEALTH_CHECKS = {"/healthz", "/readyz"}


def served_schema(**query: str) -> Any:
    response = Client().get("/api/schema/", query)
    assert response.status_code == 200, response.content[:300]
    return yaml.safe_load(response.content)


def test_schema_endpoint_serves_valid_openapi_3(db: Any) -> None:
    """/api/schema/ answers an OpenAPI 3 document that passes openapi-spec-validator, in YAML and in JSON."""
    document = served_schema()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert served_schema(format="json") == document
    assert document == openapi_document(), "the responses of the tests are checked against another schema"


def test_schema_generates_without_warnings(tmp_path: Path) -> None:
    """drf-spectacular understands every view: no guessed type, no unresolved serializer (a warning fails)."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def api_routes(patterns: list[Any], prefix: str = "/") -> list[str]:
    """Every routed path, with Django's converters written as OpenAPI parameters (<int:pk> -> {pk})."""
    paths = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths += api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            paths.append(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return paths


def test_every_api_route_is_in_the_schema() -> None:
    """Each route under /api/ and each health check is an operation of the schema."""

    def shape(path: str) -> str:
        return re.sub(r"\{\w+\}", "{}", path)

    documented = {shape(path) for path in openapi_document()["paths"]}
    routes = [p for p in api_routes(get_resolver().url_patterns) if p.startswith("/api/") or p in HEALTH_CHECKS]
    assert HEALTH_CHECKS <= set(routes)
    missing = [path for path in routes if path not in NOT_OPERATIONS and shape(path) not in documented]
    assert not missing, (
        f"{missing} not in the OpenAPI schema: a DRF view is found by itself; a plain Django view needs "
        "@plain_view(...) from creatornexus/openapi.py"
    )


@pytest.mark.parametrize(
    ("method", "path", "codes", "secured"),
    [
        ("post", "/api/auth/token/", {"200", "400", "401", "429", "503"}, False),
        ("post", "/api/auth/token/refresh/", {"200", "400", "401", "429", "503"}, False),
        ("get", "/api/scripts/", {"200", "400", "401", "404"}, True),
        ("get", "/api/scripts/{id}/", {"200", "401", "404"}, True),
        ("get", "/api/websocket/stats", {"200", "401", "403"}, True),
        ("get", "/healthz", {"200"}, False),
        ("get", "/readyz", {"200", "503"}, False),
    ],
)
def test_operations_document_their_answers(method: str, path: str, codes: set[str], secured: bool) -> None:
    """Each operation lists the statuses it can answer and, behind a token, the JWT bearer scheme."""
    operation = openapi_document()["paths"][path][method]
    assert set(operation["responses"]) == codes
    assert operation.get("security", []) == ([{"jwtAuth": []}] if secured else [])
    for code in codes - {"200"}:
        assert operation["responses"][code]["description"], f"{code} of {path} says nothing"


def test_bearer_scheme_and_pagination_are_described() -> None:
    """JWT bearer auth is a security scheme; the script list is paged (count, next, previous, results, ?page=)."""
    document = openapi_document()
    assert document["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    listing = document["paths"]["/api/scripts/"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"page", "status", "session_id"}
    page = document["components"]["schemas"]["PaginatedScriptListList"]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    throttled = document["paths"]["/api/auth/token/"]["post"]["responses"]["429"]
    assert "Retry-After" in throttled["headers"]


def test_docs_page_works_offline(db: Any) -> None:
    """/api/docs/ loads Swagger UI from this server only (no CDN) and points it at /api/schema/."""
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    remote = [url for url in assets if re.match(r"^(?:[a-z]+:)?//", url)]
    assert not remote, f"the docs page loads {remote} from elsewhere"
    for url in assets:
        assert Client().get(url).status_code == 200, url


# ---------------------------------------------------------------- the response check itself


def script_row(**fields: Any) -> dict[str, Any]:
    row = {
        "id": 1,
        "session_id": "5f0e2b6c-1d2e-4f5a-8b9c-0d1e2f3a4b5c",
        "request_id": "r1",
        "topic": "coffee",
        "platform": "tiktok",
        "duration": 30,
        "tone": "",
        "audience": "",
        "status": "completed",
        "provider": "mock",
        "model": "mock-1",
        "fallback": False,
        "estimated_words": 75,
        "words": 75,
        "usage": {"prompt_tokens": 0, "completion_tokens": 75, "total_tokens": 75},
        "error_code": "",
        "error_message": "",
        "elapsed_ms": 120,
        "created_at": "2026-11-26T10:00:00Z",
        "finished_at": "2026-11-26T10:00:01Z",
        "script": "Hook: brew it slowly.",
    }
    return row | fields


def test_response_check_accepts_a_documented_answer() -> None:
    """A body as the schema describes it passes."""
    check_response("GET", "/api/scripts/42/", 200, "application/json", script_row())


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, script_row(platform="myspace"), "$.platform: 'myspace' is not one of"),
        (200, script_row(secret="x"), "$: Additional properties are not allowed ('secret' was unexpected)"),
        (200, script_row(usage={"prompt_tokens": "many"}), "$.usage.prompt_tokens: 'many' is not of type 'integer'"),
        (418, {"detail": "teapot"}, "answered 418, which the OpenAPI schema does not list"),
        (404, {"message": "gone"}, "answered 404 off its schema at $: 'detail' is a required property"),
    ],
)
def test_response_check_names_operation_and_field(status: int, body: Any, message: str) -> None:
    """A body off the schema fails with the operation and the JSON path of the offending field."""
    with pytest.raises(AssertionError) as failure:
        check_response("GET", "/api/scripts/42/", status, "application/json", body)
    assert "GET /api/scripts/42/ (/api/scripts/{id}/)" in str(failure.value)
    assert message in str(failure.value)


def test_response_check_skips_what_the_schema_does_not_describe() -> None:
    """The page and the admin are not operations of the API: nothing to check."""
    check_response("GET", "/admin/", 302, "text/html", None)
