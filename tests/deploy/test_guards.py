"""A deployment refuses to start half configured, and says what to set.

Each case imports the settings in a process of its own, with the documented
production environment changed in one way.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from synchealth import run
from synchealth.checks import log_broker_problem
from tests.support.deploy import ROOT, production_environment

SHOW = (
    "import synchealth.settings as s; "
    "print(s.CODAT_BASE_URL, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SECURE_PROXY_SSL_HEADER, s.STORAGES['staticfiles']['BACKEND'])"
)


def _settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _refused(result: subprocess.CompletedProcess[str], message: str) -> bool:
    failed = result.returncode != 0 and "ImproperlyConfigured" in result.stderr
    return failed and message in result.stderr


@pytest.mark.system  # starts Python in a process of its own
def test_the_production_environment_starts_with_secure_cookies_and_hashed_static_files(tmp_path):
    result = _settings(production_environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "https://api.codat.io",
        "True",
        "True",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "whitenoise.storage.CompressedManifestStaticFilesStorage",
    ]


@pytest.mark.system  # starts Python in a process of its own
def test_a_deployment_refuses_to_start_without_an_upstream(tmp_path):
    result = _settings(production_environment(tmp_path, without=("CODAT_BASE_URL",)))
    assert _refused(result, "CODAT_BASE_URL is not set. Set it to https://api.codat.io")


@pytest.mark.system  # starts Python in a process of its own
def test_the_sandbox_upstream_needs_no_codat_url_but_its_own_key(tmp_path):
    env = production_environment(tmp_path, without=("CODAT_BASE_URL",), SANDBOX_ENABLED="1")
    assert _refused(_settings(env), "The sandbox is enabled with its demo API key")
    env["SANDBOX_API_KEY"] = "a-key-of-this-deployment-only"
    result = _settings(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:8000/sandbox ")


@pytest.mark.system  # starts Python in a process of its own
def test_the_sandbox_demo_key_is_refused_with_debug_off_even_for_tools(tmp_path):
    env = production_environment(tmp_path, SANDBOX_ENABLED="1", SANDBOX_API_KEY="sandbox-demo-key")
    env["SYNCHEALTH_ALLOW_INSECURE_SECRET"] = "1"
    assert _refused(_settings(env), "Set SANDBOX_API_KEY to a long random value")
    env["DEBUG"] = "1"
    assert _settings(env).returncode == 0


@pytest.mark.system  # starts Python in a process of its own
@pytest.mark.parametrize(
    ("debug", "secure", "shown"),
    [("0", "", "True True"), ("1", "", "False False"), ("0", "0", "False False")],
)
def test_cookies_are_secure_unless_debug_or_turned_off(tmp_path, debug, secure, shown):
    env = production_environment(tmp_path, DEBUG=debug, SESSION_COOKIE_SECURE=secure)
    result = _settings(env)
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stdout.split()[1:3]) == shown


@pytest.mark.system  # starts Python in a process of its own
@pytest.mark.parametrize("value", ["X-Forwarded-Proto,https", "HTTP_X_FORWARDED_PROTO", "a,b,c"])
def test_the_proxy_header_must_be_spelt_as_django_sees_it(tmp_path, value):
    result = _settings(production_environment(tmp_path, SECURE_PROXY_SSL_HEADER=value))
    assert _refused(result, "e.g. HTTP_X_FORWARDED_PROTO,https")


@pytest.mark.system  # starts Python in a process of its own
def test_tools_and_tests_read_static_files_without_collectstatic(tmp_path):
    env = production_environment(tmp_path, SYNCHEALTH_ALLOW_INSECURE_SECRET="1")
    result = _settings(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_a_worker_on_the_file_broker_says_so_in_its_log(settings, caplog):
    from celery.signals import worker_ready

    settings.DEPLOYMENT = True
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.REDIS_URL = ""
    with caplog.at_level(logging.WARNING, logger="synchealth.checks"):
        worker_ready.send(sender=None)
    assert [r.getMessage() for r in caplog.records] == [
        "CELERY_BROKER_URL is filesystem://, a development broker that keeps its queue in "
        "files on one machine: a task whose worker dies is never delivered again. Without "
        "Redis each process also keeps its own request budget, so the workers together can "
        "exceed Codat's rate limits. Set CELERY_BROKER_URL=redis://HOST:6379/0."
    ]


def test_a_worker_on_redis_or_in_development_says_nothing(settings, caplog):
    settings.DEPLOYMENT = True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    with caplog.at_level(logging.WARNING, logger="synchealth.checks"):
        log_broker_problem()
    settings.DEPLOYMENT = False
    settings.CELERY_BROKER_URL = "filesystem://"
    with caplog.at_level(logging.WARNING, logger="synchealth.checks"):
        log_broker_problem()
    assert caplog.records == []


def test_make_run_prints_the_address_and_demo_login_but_no_secret(monkeypatch):
    monkeypatch.setenv("CODAT_API_KEY", "sandbox-demo-key")
    monkeypatch.setenv("CODAT_WEBHOOK_SECRET", "whsec_c2VjcmV0LXNpZ25pbmcta2V5")
    shown = run.banner("Demo login: demo / pw-1234", Path("var/log/run.log"), verbose=False)
    assert f"http://{run.HOST}:{run.PORT}/" in shown and "Demo login: demo / pw-1234" in shown
    assert "sandbox-demo-key" not in shown and "whsec_" not in shown
