"""Create (or reset) the local demo user and print its credentials: for the embedded default only."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Create or reset a demo user (staff, so it can read /api/websocket/stats) and print its password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password-123")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            # Its password is in the README: a superuser anyone can sign in as.
            raise CommandError(
                "ensure_demo_user runs only in local use (DJANGO_DEBUG=1): it makes a superuser with a published "
                "password. Create the first operator with `manage.py createsuperuser` (see docs/deploy.md)."
            )
        user, _created = get_user_model().objects.get_or_create(username=options["username"])
        user.set_password(options["password"])
        user.is_staff = True
        user.is_superuser = True
        user.save()
        self.stdout.write(f"Demo user: username={options['username']} password={options['password']}")
