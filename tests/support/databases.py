"""PostgreSQL databases beside the test database, for tests that back one up,
restore it or upgrade it, and what they compare: schema and row counts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from tests.support.services import require
from tests.workers import database_url

CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "createdb", "dropdb", "vacuumdb")


def require_client_programs() -> None:
    missing = [name for name in CLIENT_PROGRAMS if shutil.which(name) is None]
    require(not missing, "PostgreSQL's client programs " + ", ".join(missing))


def url_of(name: str) -> str:
    """The URL of database `name` on the test database's server."""
    return database_url().rsplit("/", 1)[0] + "/" + name


def _drop(name: str) -> None:
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(suffix: str, *, create: bool = True) -> Iterator[str]:
    """A database named after the test database and `suffix` (made empty unless
    `create` is off), dropped afterwards; yields its URL."""
    name = f"{connection.settings_dict['NAME']}_{suffix}"
    _drop(name)
    if create:
        with psycopg.connect(database_url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_of(name)
    finally:
        _drop(name)


def schema(url: str) -> str:
    """The database's schema as pg_dump writes it, without its comments and
    the per-run token of `\\restrict`."""
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", f"--dbname={url}"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return "\n".join(
        line
        for line in dump.splitlines()
        if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


# Every table's columns, and every index, constraint, trigger and function by
# name and shape. Not their text: PostgreSQL prints some expressions (an
# index's `IN (...)` condition) differently once they have been read back from
# a dump, with the same meaning.
OBJECTS = """
SELECT format('column %s.%s %s not null=%s', c.relname, a.attname,
              format_type(a.atttypid, a.atttypmod), a.attnotnull)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT format('index %s on %s (%s) unique=%s partial=%s', i.indexrelid::regclass,
              i.indrelid::regclass,
              (SELECT string_agg(a.attname, ', ' ORDER BY k.position)
                 FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, position)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum),
              i.indisunique, i.indpred IS NOT NULL)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
UNION ALL
SELECT format('constraint %s on %s type %s', conname, conrelid::regclass, contype)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT format('trigger %s on %s', tgname, tgrelid::regclass)
  FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT format('function %s', oid::regprocedure)
  FROM pg_proc WHERE pronamespace = 'public'::regnamespace
ORDER BY 1
"""


def schema_objects(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(OBJECTS)]


def row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables
        }


def sequences(url: str) -> dict[str, int | None]:
    """Where each ID sequence stands: new rows after a restore must not collide."""
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
            ).fetchall()
        )
