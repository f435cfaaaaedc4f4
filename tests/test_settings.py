"""The settings read the environment strictly and touch nothing on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.system  # each test starts Python in a process of its own

ROOT = Path(__file__).resolve().parent.parent


def _import_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}},
        "SYNCHEALTH_ALLOW_INSECURE_SECRET": "1",
        "SYNCHEALTH_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import synchealth.settings as s; print(s.SANDBOX_ENABLED)"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_importing_the_settings_creates_no_folder(tmp_path):
    result = _import_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SANDBOX_ENABLED", "ture", "SANDBOX_ENABLED='ture' is not a yes/no value"),
        ("DEBUG", "enabled", "DEBUG='enabled' is not a yes/no value"),
        ("CODAT_RATE_LIMIT_PER_MINUTE", "9OO", "CODAT_RATE_LIMIT_PER_MINUTE='9OO' is not a whole"),
        ("CODAT_MAX_IN_FLIGHT_PER_COMPANY", "0", "must be at least 1"),
        ("CODAT_READ_TIMEOUT", "30s", "CODAT_READ_TIMEOUT='30s' is not a number"),
        ("CODAT_MAX_WAIT_SECONDS", "-1", "must be a number of at least 0"),
        ("CODAT_CONNECT_TIMEOUT", "nan", "must be a number of at least 0"),
        ("RETRY_CLAIM_LEASE_SECONDS", "1", "RETRY_CLAIM_LEASE_SECONDS='1' must be at least 5"),
        ("METRICS_TOKEN", "secret", "METRICS_TOKEN is shorter than 16 characters"),
        ("METRICS_ALLOWED_IPS", "10.0.0.0/8,prometheus", "'prometheus' is not an IP address"),
        ("METRICS_FLUSH_SECONDS", "10s", "METRICS_FLUSH_SECONDS='10s' is not a number"),
        ("CSV_EXPORT_MAX_ROWS", "0", "CSV_EXPORT_MAX_ROWS='0' must be at least 1"),
        ("CODAT_PORTAL_URL", "app.codat.io", "CODAT_PORTAL_URL='app.codat.io' is not an http(s)"),
        ("CODAT_PORTAL_URL", "javascript:alert(1)", "is not an http(s) address"),
    ],
)
def test_a_mistyped_value_is_a_clear_error_at_start(tmp_path, name, value, message):
    result = _import_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.mark.parametrize(("value", "shown"), [("1", "True"), ("Off", "False"), ("", "False")])
def test_yes_and_no_are_read_in_their_usual_spellings(tmp_path, value, shown):
    result = _import_settings(tmp_path, SANDBOX_ENABLED=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown
