"""Read-only admin for connections, stream sessions and daily usage: operators audit, they do not edit; one action
acts: cancelling running sessions, wherever they run.

Lists fit a 1280 px screen: short ids (the full id is on the detail page and in the tooltip), compact times,
close codes with their meaning, and links both ways between a connection and its sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from streaming.models import Connection, DailyUsage, StreamSession
from streaming.prompts import PLATFORM_NAMES
from streaming.protocol import CLOSE_REASONS, CloseCode, Platform
from streaming.registry import get_registry

SHORT_ID_CHARS = 8
TOPIC_LIST_CHARS = 60
# A connection's page lists its newest sessions; the link under them opens all of them in the session list.
SESSIONS_ON_CONNECTION_PAGE = 20
# What the standard WebSocket close codes (RFC 6455 and the IANA registry) mean to an operator.
STANDARD_CLOSE_MEANINGS = {
    1000: "normal closure",
    1001: "going away (page closed, or server stopping)",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "closed without a code",
    1006: "dropped without a close frame",
    1007: "invalid frame data",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "service restart",
    1013: "try again later",
}


def close_code_meaning(code: int) -> tuple[str, str]:
    """(what the code means, the reason text the server sends with it); an unknown code has neither."""
    try:
        ours = CloseCode(code)
    except ValueError:
        return STANDARD_CLOSE_MEANINGS.get(code, ""), ""
    return STANDARD_CLOSE_MEANINGS.get(code) or ours.name.lower().replace("_", " "), CLOSE_REASONS[ours]


def short_id(value: object) -> str:
    return str(value)[:SHORT_ID_CHARS]


def when(value: datetime | None) -> SafeString | str:
    """A compact local time (seconds matter when following a stream); a narrow column puts the time under the date."""
    if not value:
        return "-"
    local = timezone.localtime(value)
    return format_html(
        '<span class="nobr">{}</span> <span class="nobr">{}</span>', f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
    )


def _code(value: object) -> SafeString:
    """A short id in monospace, the full id in its tooltip."""
    return format_html('<code title="{}">{}</code>', str(value), short_id(value))


class ViewOnly:
    """Operators audit these rows; nothing adds, edits or deletes them from the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ViewOnly, admin.ModelAdmin):
    """Views only; lists without the navigation sidebar, so their columns get the screen's width."""

    class Media:
        css = {"all": ["streaming/admin.css"]}

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})


class CloseCodeFilter(admin.SimpleListFilter):
    """Close codes present in the table, each with its meaning, plus the connections still open."""

    title = "close code"
    parameter_name = "close_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = Connection.objects.exclude(close_code=None).order_by().values_list("close_code", flat=True).distinct()
        present = sorted(code for code in codes if code is not None)
        choices = [(str(code), f"{code} {close_code_meaning(code)[0]}".strip()) for code in present]
        return [*choices, ("open", "still open")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "open":
            return queryset.filter(closed_at=None)
        if value and value.lstrip("-").isdigit():
            return queryset.filter(close_code=int(value))
        return queryset


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["short", "user", "opened", "closed", "close", "session_count", "client_address"]
    list_filter = [CloseCodeFilter, "opened_at"]
    search_fields = ["id", "user__username", "client_address", "user_agent", "process_id"]
    date_hierarchy = "opened_at"
    list_select_related = ["user"]
    fields = readonly_fields = (
        "id",
        "user",
        "opened",
        "closed",
        "close_code_in_full",
        "client_address",
        "user_agent",
        "process_id",
        "sessions",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).annotate(session_total=Count("streamsession"))

    @admin.display(description="id", ordering="id")
    def short(self, obj: Connection) -> SafeString:
        return _code(obj.id)

    @admin.display(description="opened", ordering="opened_at")
    def opened(self, obj: Connection) -> SafeString | str:
        return when(obj.opened_at)

    @admin.display(description="closed", ordering="closed_at")
    def closed(self, obj: Connection) -> SafeString | str:
        return when(obj.closed_at) if obj.closed_at else "open"

    @admin.display(description="close code", ordering="close_code")
    def close(self, obj: Connection) -> SafeString | str:
        if obj.close_code is None:
            return "-"
        meaning, reason = close_code_meaning(obj.close_code)
        if not meaning:
            return str(obj.close_code)
        return format_html('<span title="{}">{} {}</span>', reason or meaning, obj.close_code, meaning)

    @admin.display(description="close code")
    def close_code_in_full(self, obj: Connection) -> str:
        if obj.close_code is None:
            return "-"
        meaning, reason = close_code_meaning(obj.close_code)
        return " ".join(part for part in (str(obj.close_code), meaning, f"({reason})" if reason else "") if part)

    @admin.display(description="sessions", ordering="session_total")
    def session_count(self, obj: Connection) -> SafeString | int:
        total: int = getattr(obj, "session_total", 0)
        if not total:
            return 0
        url = reverse("admin:streaming_streamsession_changelist") + f"?connection={obj.id}"
        return format_html('<a href="{}">{}</a>', url, total)

    @admin.display(description="sessions")
    def sessions(self, obj: Connection) -> SafeString | str:
        """The newest sessions of this connection, each linked, and a link to all of them."""
        rows = list(obj.streamsession_set.order_by("-created_at")[:SESSIONS_ON_CONNECTION_PAGE])
        if not rows:
            return "none"
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a> {} · {} · {} words · {}</li>',
            ((_session_url(s), _code(s.session_id), s.status, s.platform, s.words, _shorten(s.topic)) for s in rows),
        )
        everything = reverse("admin:streaming_streamsession_changelist") + f"?connection={obj.id}"
        return format_html(
            '<ul class="sessions">{}</ul><a href="{}">all sessions of this connection</a>', items, everything
        )


def _session_url(session: StreamSession) -> str:
    return reverse("admin:streaming_streamsession_change", args=[session.pk])


def _shorten(text: str, limit: int = TOPIC_LIST_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_SESSION_SECTIONS: list[tuple[str | None, tuple[str, ...]]] = [
    (None, ("session_id", "owner", "connection_link", "request_id", "status", "created", "finished")),
    ("Request", ("topic", "platform", "duration", "tone", "audience")),
    (
        "Generation",
        (
            "provider",
            "model",
            "fallback",
            "estimated_words",
            "words",
            "elapsed_ms",
            "error_code",
            "error_message",
            "usage",
            "process_id",
        ),
    ),
    ("Script", ("script",)),
]


async def cancel_everywhere(session_ids: list[str]) -> None:
    """Stop these generations on whatever process runs them (this one at once, others within a control tick).

    Called from the admin's sync view through async_to_sync: under the ASGI server that runs on the server's own
    event loop, so without Redis it is the registry that runs every generation.
    """
    registry = await get_registry()
    for session_id in session_ids:
        await registry.cancel_anywhere(session_id)


@admin.register(StreamSession)
class StreamSessionAdmin(ReadOnlyAdmin):
    actions = ["cancel_running"]
    list_display = [
        "short",
        "owner",
        "topic_short",
        "platform_name",
        "status_and_error",
        "words_of",
        "created",
        "finished",
        "connection_short",
    ]
    list_filter = ["status", "platform", "provider", "fallback", "error_code", "created_at"]
    search_fields = ["session_id", "owner__username", "topic", "request_id", "script"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    fieldsets = [(title, {"fields": fields}) for title, fields in _SESSION_SECTIONS]
    readonly_fields = [field for _, fields in _SESSION_SECTIONS for field in fields]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Stopping a generation acts on it: it takes the change permission on sessions, not just the view."""
        return bool(request.user.has_perm("streaming.change_streamsession"))

    @admin.action(description="Cancel selected running sessions", permissions=["cancel"])
    def cancel_running(self, request: HttpRequest, queryset: QuerySet[StreamSession]) -> None:
        running = queryset.filter(status=StreamSession.Status.RUNNING)
        session_ids = [str(session_id) for session_id in running.values_list("session_id", flat=True)]
        skipped = queryset.count() - len(session_ids)
        async_to_sync(cancel_everywhere)(session_ids)
        message = f"Asked {len(session_ids)} running session(s) to stop; their viewers get stream.cancelled."
        if skipped:
            message += f" {skipped} selected session(s) had already ended and were left as they are."
        self.message_user(request, message, messages.SUCCESS if session_ids else messages.WARNING)

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        """Running sessions first (what an operator looks for), then the newest."""
        running_first = Case(When(status=StreamSession.Status.RUNNING, then=Value(0)), default=Value(1))
        return [running_first.asc(), "-created_at"]

    @admin.display(description="session", ordering="session_id")
    def short(self, obj: StreamSession) -> SafeString:
        return _code(obj.session_id)

    @admin.display(description="topic", ordering="topic")
    def topic_short(self, obj: StreamSession) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.topic, _shorten(obj.topic))

    @admin.display(description="platform", ordering="platform")
    def platform_name(self, obj: StreamSession) -> str:
        try:
            return PLATFORM_NAMES[Platform(obj.platform)]
        except ValueError:
            return obj.platform

    @admin.display(description="status", ordering="status")
    def status_and_error(self, obj: StreamSession) -> SafeString | str:
        if not obj.error_code:
            return obj.status
        return format_html('{}<br><small title="{}">{}</small>', obj.status, obj.error_message, obj.error_code)

    @admin.display(description="words", ordering="words")
    def words_of(self, obj: StreamSession) -> str:
        return f"{obj.words}/{obj.estimated_words}"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: StreamSession) -> SafeString | str:
        return when(obj.created_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished(self, obj: StreamSession) -> SafeString | str:
        return when(obj.finished_at)

    @admin.display(description="connection", ordering="connection_id")
    def connection_short(self, obj: StreamSession) -> SafeString | str:
        if obj.connection_id is None:
            return "-"
        url = reverse("admin:streaming_connection_change", args=[obj.connection_id])
        return format_html('<a href="{}">{}</a>', url, _code(obj.connection_id))

    @admin.display(description="connection")
    def connection_link(self, obj: StreamSession) -> SafeString | str:
        """The connection that asked for this session, linked; its row may lag a tick behind (written in batches)."""
        if obj.connection_id is None:
            return "-"
        url = reverse("admin:streaming_connection_change", args=[obj.connection_id])
        connection = Connection.objects.select_related("user").filter(id=obj.connection_id).first()
        label = str(connection) if connection else f"{short_id(obj.connection_id)} (not recorded yet)"
        return format_html('<a href="{}" title="{}">{}</a>', url, str(obj.connection_id), label)


def _count_of(rows: QuerySet[Any], by: str) -> Coalesce:
    """How many of `rows` (filtered on an OuterRef) as a subquery annotation: one query for the whole page."""
    counted = rows.order_by().values(by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    """Per-user words per UTC day against USER_DAILY_WORD_LIMIT; today's rows also show what runs right now."""

    list_display = ["user", "day", "words_of_budget", "generations", "streams_now", "sockets_now"]
    list_filter = ["day"]
    search_fields = ["user__username"]
    date_hierarchy = "day"
    list_select_related = ["user"]
    fields = readonly_fields = ("user", "day", "words", "generations")

    def get_queryset(self, request: HttpRequest) -> QuerySet[DailyUsage]:
        running = StreamSession.objects.filter(owner=OuterRef("user"), status=StreamSession.Status.RUNNING)
        open_rows = Connection.objects.filter(user=OuterRef("user"), closed_at=None)
        return (
            super()
            .get_queryset(request)
            .annotate(
                streams_running=_count_of(running, "owner"),
                sockets_open=_count_of(open_rows, "user"),
            )
        )

    @admin.display(description="words", ordering="words")
    def words_of_budget(self, obj: DailyUsage) -> str:
        limit = int(settings.STREAMING["DAILY_WORD_LIMIT"])
        if limit <= 0:
            return f"{obj.words:,}"
        return f"{obj.words:,} / {limit:,} ({obj.words * 100 // limit}%)"

    @admin.display(description="running streams")
    def streams_now(self, obj: DailyUsage) -> int | str:
        return getattr(obj, "streams_running", 0) if obj.day == timezone.now().date() else "-"

    @admin.display(description="open sockets")
    def sockets_now(self, obj: DailyUsage) -> int | str:
        return getattr(obj, "sockets_open", 0) if obj.day == timezone.now().date() else "-"
