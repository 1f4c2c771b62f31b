"""Django's user admin, plus what an operator does to an account's sockets: sign it out everywhere, deactivate it;
and its logins, read-only.

Both reach every open socket of the user on every process within seconds (accounts/revocation.py): signing out
closes them with 4401 and refuses every token issued before; deactivating closes them with 4403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.models import Login
from streaming.admin import ViewOnly
from streaming.protocol import AuthCause

User = get_user_model()
admin.site.unregister(User)
# SimpleJWT's pages show each refresh token in full, i.e. a working credential of the user: not on a screen.
# Logins (below) show who is signed in where, and how each sign-in ended.
admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


@admin.register(User)
class OperatorUserAdmin(UserAdmin):
    actions = ["close_sockets", "deactivate"]

    @admin.action(description="Sign out everywhere (closes their sockets; they sign in again)", permissions=["change"])
    def close_sockets(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        services.sign_out_everywhere(user_ids, AuthCause.CLOSED_BY_OPERATOR)
        self.message_user(
            request, f"Signed out {len(user_ids)} user(s) everywhere; their sockets close within a few seconds."
        )

    @admin.action(description="Deactivate (closes their sockets; they cannot sign in)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected_self = queryset.filter(pk=request.user.pk).exists()
        count = queryset.exclude(pk=request.user.pk).update(is_active=False)
        self.message_user(request, f"Deactivated {count} user(s); their sockets close within a few seconds.")
        if selected_self:
            self.message_user(request, "Your own account was left active.", messages.WARNING)


@admin.register(Login)
class LoginAdmin(ViewOnly, admin.ModelAdmin):
    """Every sign-in and how it ended; read-only (sign users out with the user actions)."""

    list_display = ["short", "user", "created_at", "ended_at", "ended_by"]
    list_filter = ["ended_by", "created_at"]
    search_fields = ["id", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["id", "user", "created_at", "ended_at", "ended_by"]

    @admin.display(description="login", ordering="id")
    def short(self, obj: Login) -> str:
        return str(obj.id)[:8]
