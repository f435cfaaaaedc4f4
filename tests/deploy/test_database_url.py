"""scripts/backup and scripts/restore hand DATABASE_URL to PostgreSQL's
programs without its password on the command line."""

from __future__ import annotations

import importlib.util

from tests.support.deploy import ROOT

_spec = importlib.util.spec_from_file_location("database_url", ROOT / "scripts" / "database_url.py")
assert _spec is not None and _spec.loader is not None
database_url = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(database_url)


def test_the_password_goes_in_the_environment_and_nowhere_else():
    uri, env = database_url.client("postgres://sync%40health:p%40ss%3Aw@db.example:6432/synchealth")
    assert uri == "postgresql://sync%40health@db.example:6432/synchealth"
    assert env["PGPASSWORD"] == "p@ss:w"


def test_another_database_on_the_same_server_keeps_the_connection_options(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = "postgresql://app@db.example/synchealth?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    uri, env = database_url.client(url, database="synchealth_restored")
    assert uri == (
        "postgresql://app@db.example/synchealth_restored?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    )
    assert "PGPASSWORD" not in env


def test_a_socket_connection_without_user_or_host_is_passed_on_as_it_is():
    uri, _ = database_url.client("postgres:///synchealth?host=/var/run/postgresql")
    assert uri == "postgresql:///synchealth?host=/var/run/postgresql"
    assert database_url.database_name(uri) == "synchealth"
