"""DATABASE_URL as PostgreSQL's client programs take it (for scripts/backup and scripts/restore).

The password goes to them in the environment (PGPASSWORD), never on a
command line where `ps` would show it.
"""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

# dj-database-url's names for PostgreSQL; the client programs take the first two.
SCHEMES = ("postgres", "postgresql", "pgsql")
# A database name the scripts create: plain, so it needs no quoting anywhere.
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def from_environment() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("DATABASE_URL is not set: run this with the deployment's environment.")
    if urlsplit(url).scheme not in SCHEMES:
        sys.exit(
            "DATABASE_URL is not a PostgreSQL database (postgres://…): these scripts back up "
            "and restore a PostgreSQL deployment."
        )
    return url


def client(url: str, *, database: str | None = None) -> tuple[str, dict[str, str]]:
    """(the connection URI without its password, the environment with it), for
    DATABASE_URL's server; `database` names another database on it."""
    parts = urlsplit(url)
    users, _, host = parts.netloc.rpartition("@")
    user, _, password = users.partition(":")
    netloc = f"{user}@{host}" if user else host
    path = f"/{database}" if database is not None else parts.path
    uri = urlunsplit(("postgresql", netloc, path, parts.query, ""))
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = unquote(password)
    return uri, env


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))
