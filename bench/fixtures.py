"""Bench set-up, run in its own process: migrate the bench database and create the bench users."""

from __future__ import annotations

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    user_model = get_user_model()
    names = [f"{args.prefix}{i}" for i in range(args.users)]
    existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
    hashed = make_password(args.password)  # once: every bench user shares the password
    user_model.objects.filter(username__in=existing).update(password=hashed, is_active=True)
    user_model.objects.bulk_create(
        [user_model(username=name, password=hashed) for name in names if name not in existing], batch_size=500
    )


if __name__ == "__main__":
    main()
