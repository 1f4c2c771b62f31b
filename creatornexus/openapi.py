"""How the REST API describes itself to drf-spectacular: error bodies, plain async views, OpenAPI 3.1 clean-ups.

Every operation gets the error responses its view can really answer (401 behind a token, 403 behind a staff
check, 404 with a path parameter or a page number, 429 with Retry-After behind a throttle, 400 for a body), so a
new view is documented with its errors without listing them by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.views import APIView

# Permissions that let any signed-in user through: anything else may answer 403.
_OPEN_PERMISSIONS = (permissions.AllowAny, permissions.IsAuthenticated)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

View = TypeVar("View", bound=Callable[..., Any])


class ErrorSerializer(serializers.Serializer[Any]):
    """DRF's error body: a readable `detail`; a rejected token adds its `code` and the checks that failed."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    messages = serializers.ListField(child=serializers.DictField(child=serializers.CharField()), required=False)


# 400: each offending field (or non_field_errors) with its messages.
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "examples": [{"username": ["This field is required."]}],
}
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Whole seconds until a new attempt may pass.", "schema": {"type": "integer"}}
}
ERROR_DESCRIPTIONS = {
    "400": "The body is invalid: each field with its messages.",
    "401": "No token, or a token that is malformed, expired or not an access token.",
    "403": "A valid token of a user who may not do this.",
    "404": "No such object for this user (another user's is answered alike), or a page past the last.",
    "429": "Too many attempts: wait Retry-After seconds.",
}


class CheckedJWTScheme(SimpleJWTScheme):
    """Our JWT authentication (SimpleJWT's, plus the revocation rule) is the same bearer scheme to a client."""

    target_class = "accounts.api.authentication.CheckedJWTAuthentication"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's inspector, adding the error responses a view can really answer."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code in responses:  # an explicit @extend_schema response wins
                continue
            body = VALIDATION_ERROR_SCHEMA if code == "400" else ErrorSerializer
            responses[code] = self._get_response_for_code(body, code, direction=direction)
            responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RETRY_AFTER_HEADER)
        return responses

    def _error_codes(self) -> list[str]:
        view = self.view
        codes = []
        if self.method in _BODY_METHODS and self.get_request_serializer() is not None:
            codes.append("400")
        checks = view.get_permissions()
        guarded = [check for check in checks if not isinstance(check, _OPEN_PERMISSIONS)]
        if view.get_authenticators() and not all(isinstance(check, permissions.AllowAny) for check in checks):
            codes.append("401")
        if guarded:
            codes.append("403")
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            codes.append("404")
        if view.get_throttles():
            codes.append("429")
        return codes


def nullable_as_type_list(result: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    """OpenAPI 3.1 dropped `nullable`: DRF's pagination schema still says it; turn it into a JSON Schema type list.

    A postprocessing hook (SPECTACULAR_SETTINGS), so responses validate with a plain JSON Schema validator.
    """

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.pop("nullable", False) and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result


def plain_view(
    method: str,
    *,
    authentication: bool = True,
    permission_classes: tuple[type[permissions.BasePermission], ...] = (permissions.IsAuthenticated,),
    **schema: Any,
) -> Callable[[View], View]:
    """Describe a plain (async) Django view in the schema, which by itself only sees DRF views.

    The view gets the two attributes DRF's endpoint enumerator reads (`cls`, `initkwargs`), naming a stand-in
    APIView whose one handler carries the schema and whose authentication and permissions say what the view
    checks by hand. The stand-in never serves a request; the view is unchanged.
    """

    def decorate(view: View) -> View:
        def handler(self: APIView, request: Any, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("documentation only")

        attrs: dict[str, Any] = {
            method.lower(): extend_schema(**schema)(handler),
            "__doc__": view.__doc__,
            "__module__": view.__module__,
            "permission_classes": permission_classes,
        }
        if not authentication:
            attrs["authentication_classes"] = ()
        target: Any = view
        target.cls = type(f"{view.__name__}_schema", (APIView,), attrs)
        target.initkwargs = {}
        return view

    return decorate
