"""The production environment the README documents, for tests that start processes with it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The README's "Production" environment, with this machine's services. Each
# test makes its own SECRET_KEY and var directory.
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "synchealth.example.com,127.0.0.1",
    "CSRF_TRUSTED_ORIGINS": "https://synchealth.example.com",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "CELERY_BROKER_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
    "CODAT_BASE_URL": "https://api.codat.io",
    "CODAT_API_KEY": "a-codat-api-key",
    "CODAT_WEBHOOK_SECRET": "whsec_" + "A" * 32,
}
# What the test run sets for itself (pyproject's pytest env, CI, the browser
# tests), and a deployment does not.
_TEST_ONLY = {
    "SYNCHEALTH_ALLOW_INSECURE_SECRET",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "DATABASE_URL",
    "REDIS_URL",
    "SANDBOX_ENABLED",
    "SANDBOX_API_KEY",
    "DJANGO_SETTINGS_MODULE",
}


def production_environment(var_dir: Path, *, without: tuple[str, ...] = (), **changes: str):
    """This process's environment made into the documented production one.

    `without` leaves settings out (to see what their absence does); `changes`
    sets others.
    """
    env = {k: v for k, v in os.environ.items() if k not in _TEST_ONLY and k not in PRODUCTION}
    env.update(PRODUCTION)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["SYNCHEALTH_VAR_DIR"] = str(var_dir)
    env["DATABASE_URL"] = f"sqlite:///{var_dir / 'synchealth.sqlite3'}"
    for name in without:
        env.pop(name, None)
    env.update(changes)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ARGS` in a process of its own, with `env`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
