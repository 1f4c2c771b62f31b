"""ORM reads for sessions, scripts and operator stats."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from streaming.models import Connection, StreamSession


def session_owner_id(session_id: str) -> int | None:
    """The owner of a session that ever existed (the store may have expired it)."""
    return StreamSession.objects.filter(session_id=session_id).values_list("owner_id", flat=True).first()


def scripts_for(user_id: int) -> QuerySet[StreamSession]:
    """Newest first; the id breaks ties, so pages of the list never repeat or skip a script."""
    return StreamSession.objects.filter(owner_id=user_id).order_by("-created_at", "-id")


def totals() -> dict[str, dict[str, int]]:
    """Database-wide counters for /api/websocket/stats."""
    by_status = dict(StreamSession.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "connections": {"total": Connection.objects.count()},
        "streams": {status: by_status.get(status, 0) for status in StreamSession.Status.values},
    }
