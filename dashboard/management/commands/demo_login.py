"""Make sure the demo login exists, and print it.

The password is random, made once per installation and kept in the var
directory (never in the repository); `make run` prints it every time.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "demo"


class Command(BaseCommand):
    help = "Create the demo login (once) and print its username and password."

    def handle(self, *args: object, **options: Any) -> None:
        path = settings.VAR_DIR / "demo-login.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        password = path.read_text().strip() if path.exists() else ""
        if not password:
            password = secrets.token_urlsafe(12)
            path.write_text(password + "\n")
            path.chmod(0o600)
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"  Demo login: {USERNAME} / {password}")
