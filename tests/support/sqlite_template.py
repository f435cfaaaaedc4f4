"""A migrated SQLite test database, kept between runs while no migration changes.

Migrating an empty database takes most of the time a pytest process spends
before its first test (rendering the models' states of every migration), and
`make test-fast` pays it once per worker. The first run migrates as always and
keeps a copy of the result next to the test database, named by a digest of
every installed app's migrations and of Django's version; later runs copy it
into place and let `migrate` find nothing to do. Any change to a migration, to
an installed app or to Django names another copy, so the schema is always the
one the migrations build.

SQLite only: on PostgreSQL (CI) each run creates its database as before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

PREFIX = "test-template-"


def migrations_digest() -> str:
    import django
    from django.apps import apps

    digest = hashlib.sha256(django.get_version().encode())
    for app in sorted(apps.get_app_configs(), key=lambda a: a.label):
        digest.update(app.label.encode())
        folder = Path(app.path) / "migrations"
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _remove(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def install() -> None:
    """Make SQLite's test database creation start from the kept copy when there is one."""
    from django.db.backends.sqlite3.creation import DatabaseCreation

    create_test_db = DatabaseCreation.create_test_db
    if getattr(create_test_db, "from_template", False):
        return

    def from_template(self, verbosity=1, autoclobber=False, serialize=True, keepdb=False):
        name = self._get_test_db_name()
        if keepdb or self.is_in_memory_db(name):
            return create_test_db(self, verbosity, autoclobber, serialize, keepdb)
        database = Path(name)
        template = database.with_name(f"{PREFIX}{migrations_digest()}.sqlite3")
        if template.exists():
            _remove(database)
            shutil.copyfile(template, database)
            # An existing database: `migrate` checks it is up to date, then
            # runs the post-migrate steps as on a new one.
            return create_test_db(self, verbosity, autoclobber, serialize, keepdb=True)
        created = create_test_db(self, verbosity, autoclobber, serialize, keepdb)
        partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
        source, copy = sqlite3.connect(created), sqlite3.connect(partial)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        for stale in template.parent.glob(f"{PREFIX}*.sqlite3"):
            if stale != template:
                stale.unlink(missing_ok=True)
        os.replace(partial, template)  # two workers at once: the last one's copy stays
        return created

    from_template.from_template = True  # type: ignore[attr-defined]
    DatabaseCreation.create_test_db = from_template
