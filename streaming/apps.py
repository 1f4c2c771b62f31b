"""App config for the streaming app."""

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streaming"
    verbose_name = "Streaming"
