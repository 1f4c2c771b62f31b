"""Read-only admin for connections and stream sessions: operators audit, they do not edit."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from streaming.models import Connection, StreamSession


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "opened_at", "closed_at", "close_code", "client_address", "process_id"]
    list_filter = ["close_code", "opened_at", "process_id"]
    search_fields = ["id", "user__username", "client_address", "user_agent"]
    date_hierarchy = "opened_at"
    list_select_related = ["user"]


@admin.register(StreamSession)
class StreamSessionAdmin(ReadOnlyAdmin):
    list_display = [
        "session_id",
        "owner",
        "topic",
        "platform",
        "status",
        "provider",
        "words",
        "error_code",
        "created_at",
    ]
    list_filter = ["status", "platform", "provider", "fallback", "error_code", "created_at"]
    search_fields = ["session_id", "owner__username", "topic", "request_id", "script"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
