"""`manage.py check --deploy` passes in the documented production environment.

And with a piece missing, it fails and names the piece.
"""

from __future__ import annotations

import pytest

from tests.support.deploy import manage, production_environment

pytestmark = pytest.mark.system  # each test runs manage.py in a process of its own


def test_the_documented_production_environment_passes(tmp_path):
    result = manage(
        production_environment(tmp_path), "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_each_missing_piece_fails_it_by_name(tmp_path):
    env = production_environment(
        tmp_path,
        without=("SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT"),
        SESSION_COOKIE_SECURE="0",
        CELERY_BROKER_URL="filesystem://",
    )
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for named in [
        "(security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.",
        "(security.W008) Your SECURE_SSL_REDIRECT setting is not set to True.",
        "(security.W012) SESSION_COOKIE_SECURE is not set to True.",
        "(security.W016) You have 'django.middleware.csrf.CsrfViewMiddleware' in your",
        "(synchealth.W001) CELERY_BROKER_URL is filesystem://, a development broker that "
        "keeps its queue in files on one machine: a task whose worker dies is never "
        "delivered again.",
    ]:
        assert named in result.stderr


def test_a_deployment_may_silence_a_check_it_has_decided_on(tmp_path):
    """A proxy that redirects to HTTPS itself makes Django's redirect redundant."""
    env = production_environment(
        tmp_path, without=("SECURE_SSL_REDIRECT",), SILENCED_SYSTEM_CHECKS="security.W008"
    )
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
