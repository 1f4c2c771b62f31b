"""Rows an operator audits: one per WebSocket connection, one per generation (stream session), one per user-day."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Connection(models.Model):
    """One authenticated WebSocket connection, from accept to close."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ws_connections")
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_code = models.IntegerField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    process_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        """Who, which (the id's first 8 characters) and since when: what an operator recognises."""
        opened = timezone.localtime(self.opened_at).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.user.get_username()} · {str(self.id)[:8]} · opened {opened}"


class StreamSession(models.Model):
    """One generation; its id is the script_id clients see, its final text is the saved script."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    session_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stream_sessions")
    # No database constraint: connection rows are written in batches, a tick after the socket opens.
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False)
    request_id = models.CharField(max_length=100, blank=True)
    topic = models.CharField(max_length=500)
    platform = models.CharField(max_length=32)
    duration = models.PositiveIntegerField()
    tone = models.CharField(max_length=200, blank=True)
    audience = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=100, blank=True)
    fallback = models.BooleanField(default=False)
    estimated_words = models.PositiveIntegerField(default=0)
    words = models.PositiveIntegerField(default=0)
    usage = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    script = models.TextField(blank=True)
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)
    process_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.topic[:40]} ({self.status})"


class DailyUsage(models.Model):
    """Words a user's generations wrote on one UTC day, for operators; the quota itself counts in the store.

    Written once per generation, when it ends: a generation that spans midnight counts on the day it ended.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField(db_index=True)
    words = models.PositiveIntegerField(default=0)
    generations = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "-words"]
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="daily_usage_one_row_per_user_day")]
        verbose_name_plural = "daily usage"

    def __str__(self) -> str:
        return f"{self.user.get_username()} · {self.day} · {self.words} words"
