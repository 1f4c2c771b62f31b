"""HTTP API: the user's saved scripts and usage, operator stats, health and readiness."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, permissions
from rest_framework.exceptions import ValidationError

from accounts.auth import request_user
from creatornexus.openapi import VALIDATION_ERROR_SCHEMA, plain_view
from streaming import quotas, selectors
from streaming.api import schemas
from streaming.api.serializers import ScriptDetailSerializer, ScriptListSerializer
from streaming.models import StreamSession
from streaming.protocol import iso
from streaming.providers import get_provider
from streaming.registry import get_registry

logger = logging.getLogger(__name__)

READY_CHECK_TIMEOUT_S = 2


@extend_schema_view(
    get=extend_schema(
        summary="The caller's saved scripts, newest first",
        tags=["scripts"],
        parameters=[
            OpenApiParameter("status", str, enum=schemas.SCRIPT_STATUSES, description="Only scripts in this state."),
            OpenApiParameter(
                "session_id",
                OpenApiTypes.UUID,
                description="Only the script of this stream session (the `session_id` of its socket frames).",
            ),
        ],
        responses={
            200: ScriptListSerializer(many=True),
            400: OpenApiResponse(VALIDATION_ERROR_SCHEMA, description="A filter's value is not valid."),
        },
    )
)
class ScriptList(generics.ListAPIView[StreamSession]):
    """GET /api/scripts/: the user's own scripts, newest first; ?status=completed and ?session_id=<uuid> filter.

    A page that followed a stream looks its row up by session_id, to tell a stream that ended while it was away
    from one whose process lost it.
    """

    serializer_class = ScriptListSerializer

    def get_queryset(self) -> QuerySet[StreamSession]:
        queryset = selectors.scripts_for(int(self.request.user.pk or 0))
        status = self.request.query_params.get("status")
        if status:
            queryset = queryset.filter(status=status)
        session_id = self.request.query_params.get("session_id")
        if session_id is not None:
            queryset = queryset.filter(session_id=_session_id(session_id))
        return queryset


def _session_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError({"session_id": ["Must be a session id (a UUID)."]}) from None


@extend_schema_view(get=extend_schema(summary="One saved script with its full text", tags=["scripts"]))
class ScriptDetail(generics.RetrieveAPIView[StreamSession]):
    """GET /api/scripts/<id>/: one script with its text; another user's is a 404."""

    serializer_class = ScriptDetailSerializer

    def get_queryset(self) -> QuerySet[StreamSession]:
        return selectors.scripts_for(int(self.request.user.pk or 0))


@plain_view(
    "GET",
    operation_id="usage",
    summary="The user's own usage against each quota (words today, running streams, open sockets)",
    tags=["usage"],
    responses=schemas.UsageSerializer,
)
async def usage(request: HttpRequest) -> JsonResponse:
    """GET /api/usage/: the user's own figures against each quota, over the whole cluster (limits null = none)."""
    user = await request_user(request)
    if user is None:
        return JsonResponse({"detail": "Authentication credentials were not provided or are invalid."}, status=401)
    registry = await get_registry()
    figures = await quotas.usage_of(registry.store, user.pk)
    body = {
        "words": {"used": figures.words_used, "limit": figures.words_limit, "resets_at": iso(figures.resets_at)},
        "streams": {"running": figures.streams_running, "limit": figures.streams_limit},
        "sockets": {"open": figures.sockets_open, "limit": figures.sockets_limit},
    }
    return JsonResponse(body)


def _ping_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_S):
            await probe
    except Exception as exc:
        logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return name, f"error: {type(exc).__name__}"
    return name, "ok"


@plain_view(
    "GET",
    authentication=False,
    permission_classes=(),
    operation_id="healthz",
    summary="Liveness: the process is up",
    tags=["health"],
    responses=schemas.HealthSerializer,
)
async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up."""
    return JsonResponse({"status": "ok"})


@plain_view(
    "GET",
    authentication=False,
    permission_classes=(),
    operation_id="readyz",
    summary="Readiness: the database and the channel layer answer, and the process is not draining",
    tags=["health"],
    responses={
        200: schemas.ReadinessSerializer,
        503: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="NotReady",
                serializers=[schemas.ReadinessSerializer, schemas.DrainingSerializer],
                resource_type_field_name=None,
            ),
            description="A check failed (`unavailable`), or the process is draining.",
        ),
    },
)
async def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the channel layer (Redis, when configured) answer; the provider is described, not called.

    A draining process (SIGTERM) is not ready whatever its checks say: the load balancer takes it out at once.
    """
    registry = await get_registry()
    if registry.draining:
        return JsonResponse({"status": "draining", "process_id": registry.process_id}, status=503)
    checks = dict(
        await asyncio.gather(
            _check("database", database_sync_to_async(_ping_database)()),
            _check("channel_layer", registry.store.ping()),
        )
    )
    ready = all(value == "ok" for value in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": checks,
        "channel_layer": "redis" if settings.REDIS_URL else "in-memory",
        "provider": get_provider().describe(),
        "process_id": registry.process_id,
    }
    return JsonResponse(body, status=200 if ready else 503)


@plain_view(
    "GET",
    permission_classes=(permissions.IsAdminUser,),
    operation_id="websocket_stats",
    summary="Cluster-wide connection and stream counts (staff)",
    tags=["operators"],
    responses=schemas.StatsSerializer,
)
async def websocket_stats(request: HttpRequest) -> JsonResponse:
    """Cluster-wide counts for staff: live figures from every process's heartbeat, totals from the database."""
    user = await request_user(request)
    if user is None:
        return JsonResponse({"detail": "Authentication credentials were not provided or are invalid."}, status=401)
    if not user.is_staff:
        return JsonResponse({"detail": "Staff only."}, status=403)
    registry = await get_registry()
    if not registry.draining:  # a drained process has left the process list: it must not put itself back
        await registry.heartbeat()
    await registry.write_connection_rows()  # this process's rows of the current tick count too
    processes = await registry.store.processes()
    running = await registry.store.running_sessions()
    totals = await database_sync_to_async(selectors.totals)()
    body = {
        "connections": {
            "active": sum(int(info.get("connections", 0)) for info in processes.values()),
            "total": totals["connections"]["total"],
        },
        "streams": {**totals["streams"], "running": len(running)},
        "processes": sorted(processes.values(), key=lambda info: str(info.get("process_id"))),
        "channel_layer": "redis" if settings.REDIS_URL else "in-memory",
        "provider": get_provider().describe(),
    }
    return JsonResponse(body)
