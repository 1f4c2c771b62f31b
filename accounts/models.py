"""Accounts use Django's own User model; these rows say which of its tokens still hold (docs/protocol.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from streaming.protocol import AuthCause

# How a login, or every token of a user before an instant, was ended.
END_CHOICES = [
    (AuthCause.LOGGED_OUT.value, "signed out (this login)"),
    (AuthCause.SIGNED_OUT_EVERYWHERE.value, "signed out everywhere"),
    (AuthCause.CLOSED_BY_OPERATOR.value, "closed by an operator"),
]


class Login(models.Model):
    """One sign-in: its id rides in its refresh token, every rotation of it and every access token minted from them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="logins")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=32, choices=END_CHOICES, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.user.get_username()} · {str(self.id)[:8]}"


class TokenCutoff(models.Model):
    """Every token of this user issued before `not_before` no longer authenticates (sockets, refresh, API)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="token_cutoff"
    )
    not_before = models.DateTimeField()
    cause = models.CharField(max_length=32, choices=END_CHOICES)

    def __str__(self) -> str:
        return f"{self.user.get_username()}: tokens before {self.not_before:%Y-%m-%d %H:%M:%S} ({self.cause})"
