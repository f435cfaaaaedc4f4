"""The sign-in settings are read strictly: a mistake stops the start and names the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # each test starts Python in a process of its own

ROOT = Path(__file__).resolve().parents[2]

OIDC = {
    "OIDC_RP_CLIENT_ID": "sync-health",
    "OIDC_RP_CLIENT_SECRET": "secret",
    "OIDC_OP_ISSUER": "https://id.example.com",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://id.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://id.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://id.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://id.example.com/jwks",
}


def start(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh process with the settings module and `env`."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "DATABASE_URL"))},
        "DJANGO_SETTINGS_MODULE": "synchealth.settings",
        "SYNCHEALTH_ALLOW_INSECURE_SECRET": "1",
        "SYNCHEALTH_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_defaults(tmp_path):
    result = start(
        tmp_path,
        "from django.conf import settings as s; print(s.TRUSTED_PROXIES, s.AXES_FAILURE_LIMIT, "
        "s.AXES_COOLOFF_TIME, s.SESSION_IDLE_TIMEOUT_MINUTES, s.SESSION_MAX_AGE_HOURS, "
        "s.PASSWORD_RESET_ENABLED, s.OIDC_ENABLED)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "5", "0:15:00", "60", "12", "False", "False"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, "TRUSTED_PROXIES: 'proxy.local' is not"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT='0' must be at least 1"),
        ({"SESSION_IDLE_TIMEOUT_MINUTES": "1h"}, "SESSION_IDLE_TIMEOUT_MINUTES='1h' is not a"),
        ({"PASSWORD_MIN_LENGTH": "6"}, "PASSWORD_MIN_LENGTH='6' must be at least 8"),
        (
            {"OIDC_RP_CLIENT_ID": "sync-health", "OIDC_OP_ISSUER": "https://id.example.com"},
            "single sign-on needs OIDC_RP_CLIENT_SECRET, OIDC_OP_AUTHORIZATION_ENDPOINT",
        ),
        ({**OIDC, "OIDC_RP_SCOPES": "email profile"}, "OIDC_RP_SCOPES must include 'openid'"),
        ({"OIDC_GROUP_ROLES": "idp-support"}, "'idp-support' is not of the form name=value"),
        (
            {"OIDC_GROUP_ROLES": "a=Support viewer,a=Support lead"},
            "OIDC_GROUP_ROLES: 'a' is given more than once",
        ),
    ],
)
def test_a_mistake_is_a_clear_error_at_start(tmp_path, env, message):
    result = start(tmp_path, "import synchealth.settings", **env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_a_mapping_to_a_role_that_does_not_exist_stops_the_start(tmp_path):
    result = start(
        tmp_path, "import django; django.setup()", OIDC_GROUP_ROLES="idp-admins=Superhero"
    )

    assert result.returncode != 0
    assert "OIDC_GROUP_ROLES names 'Superhero'; the roles are 'Support viewer'" in result.stderr


def test_a_complete_configuration_turns_single_sign_on_on(tmp_path):
    result = start(
        tmp_path,
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.OIDC_ENABLED, s.OIDC_GROUP_ROLES)",
        **OIDC,
        OIDC_GROUP_ROLES="idp-support=Support viewer, idp-runners = Support runner",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "True {'idp-support': 'Support viewer', 'idp-runners': 'Support runner'}"
    )


def test_an_e_mail_server_turns_password_reset_on(tmp_path):
    result = start(
        tmp_path,
        "from django.conf import settings as s; print(s.PASSWORD_RESET_ENABLED)",
        EMAIL_HOST="smtp.example.com",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
