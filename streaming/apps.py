"""App config for the streaming app."""

from django.apps import AppConfig
from django.core import checks


class StreamingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "streaming"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from creatornexus.environment import check_unknown_variables

        checks.register(check_unknown_variables)
