"""GET /metrics: this process's Prometheus metrics, for the scrape token (METRICS_TOKEN) or a staff user."""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from accounts.auth import request_user
from streaming import metrics
from streaming.registry import get_registry


def _is_scrape_token(request: HttpRequest) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>`, compared in constant time; never true when no token is set."""
    expected = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), expected)


@require_GET
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrapes every process here (docs/deploy.md, "Metrics"): each answers for itself."""
    if not _is_scrape_token(request):
        user = await request_user(request)
        if user is None:
            response = JsonResponse({"detail": "A scrape token or a staff access token is required."}, status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
        if not user.is_staff:
            return JsonResponse({"detail": "Staff only."}, status=403)
    registry = await get_registry()
    body, content_type = metrics.exposition(
        request.headers.get("Accept", ""),
        registry.process_id,
        connections=len(registry.connections),
        streams=len(registry.streams),
        heartbeat_lag_s=time.monotonic() - registry.heartbeat_at,
        process_ttl_s=settings.STREAMING["PROCESS_TTL_S"],
    )
    return HttpResponse(body, content_type=content_type)
