"""ORM writes for connections and sessions: called once per connection or generation, never per word."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from streaming.models import Connection, DailyUsage, StreamSession
from streaming.protocol import ScriptRequest


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    connection_id: str
    user_id: int
    client_address: str
    user_agent: str
    process_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    connection_id: str
    close_code: int | None
    at: datetime


def connections_record(*, opened: list[ConnectionOpened], closed: list[ConnectionClosed]) -> None:
    """Write one tick's connection rows in one transaction: opens first, so a close always finds its row."""
    with transaction.atomic():
        Connection.objects.bulk_create(
            [
                Connection(
                    id=row.connection_id,
                    user_id=row.user_id,
                    client_address=row.client_address[:64],
                    user_agent=row.user_agent[:300],
                    process_id=row.process_id,
                    opened_at=row.at,
                )
                for row in opened
            ]
        )
        for row in closed:
            Connection.objects.filter(id=row.connection_id, closed_at__isnull=True).update(
                closed_at=row.at, close_code=row.close_code
            )


def session_create(
    *,
    session_id: str,
    owner_id: int,
    connection_id: str | None,
    request: ScriptRequest,
    provider: str,
    model: str,
    process_id: str,
) -> int:
    """Record a running generation; returns its script id."""
    row = StreamSession.objects.create(
        session_id=session_id,
        owner_id=owner_id,
        connection_id=connection_id,
        request_id=request.request_id or "",
        topic=request.topic,
        platform=request.platform.value,
        duration=request.duration,
        tone=request.tone,
        audience=request.audience,
        provider=provider,
        model=model,
        estimated_words=request.estimated_words,
        process_id=process_id,
    )
    return row.pk


def session_finish(
    *,
    session_id: str,
    status: str,
    script: str,
    words: int,
    usage: dict[str, Any] | None = None,
    elapsed_ms: int | None = None,
    error_code: str = "",
    error_message: str = "",
) -> None:
    """Save the end of a generation once, then add its words to its owner's day; a row already ended (e.g. by a
    worker_lost sweep) is kept and counted no second time."""
    now = timezone.now()
    ended = StreamSession.objects.filter(session_id=session_id, status=StreamSession.Status.RUNNING).update(
        status=status,
        script=script,
        words=words,
        usage=usage or {},
        elapsed_ms=elapsed_ms,
        error_code=error_code,
        error_message=error_message[:500],
        finished_at=now,
    )
    if ended:
        # After the row, not with it: watchers on other processes may read the row as soon as they see the end.
        _daily_usage_add(session_id, now.astimezone(UTC).date(), words)


def _daily_usage_add(session_id: str, day: date, words: int) -> None:
    """One more generation of `words` words on its owner's UTC day: one UPDATE, unless it is the day's first."""
    grow = {"words": F("words") + words, "generations": F("generations") + 1}
    owner = StreamSession.objects.filter(session_id=session_id).values("owner_id")[:1]
    if DailyUsage.objects.filter(user_id=Subquery(owner), day=day).update(**grow):
        return
    owner_id = StreamSession.objects.filter(session_id=session_id).values_list("owner_id", flat=True).get()
    try:
        with transaction.atomic():
            DailyUsage.objects.create(user_id=owner_id, day=day, words=words, generations=1)
    except IntegrityError:  # another process wrote the day's first row meanwhile
        DailyUsage.objects.filter(user_id=owner_id, day=day).update(**grow)


def session_provider_switch(*, session_id: str, provider: str, model: str) -> None:
    """The fallback took over before the first word."""
    StreamSession.objects.filter(session_id=session_id).update(provider=provider, model=model, fallback=True)


def sessions_running_elsewhere(*, alive_process_ids: list[str], older_than_s: float) -> list[str]:
    """Session ids of rows still `running` whose process is not alive (younger rows may be a start in flight)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    rows = (
        StreamSession.objects.filter(status=StreamSession.Status.RUNNING, created_at__lt=cutoff)
        .exclude(process_id__in=alive_process_ids)
        .values_list("session_id", flat=True)[:500]
    )
    return [str(session_id) for session_id in rows]
