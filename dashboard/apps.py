from pathlib import Path
from typing import Any

from django.apps import AppConfig


def _make_var_dirs(settings: Any) -> None:
    """The folders the embedded defaults write to: made at start, never by the settings."""
    folders: list[Path] = []
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        names = [database["NAME"], database.get("TEST", {}).get("NAME")]
        folders += [Path(name).parent for name in names if name]
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folders += [Path(options[key]) for key in ("data_folder_in", "processed_folder")]
        folders.append(Path(options["control_folder"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Sync Health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_in

        _make_var_dirs(settings)

        import synchealth.checks  # noqa: F401  (registers the deployment's system checks)

        from . import audit
        from .middleware import forget_zone

        user_logged_in.connect(forget_zone, dispatch_uid="dashboard.forget_zone")

        from celery.signals import task_postrun, worker_process_shutdown

        from .metrics.series import flush_on_signal

        # A task's counts are in the shared store once it has ended (dashboard.metrics).
        task_postrun.connect(flush_on_signal, dispatch_uid="dashboard.metrics.task")
        worker_process_shutdown.connect(flush_on_signal, dispatch_uid="dashboard.metrics.exit")
        audit.connect()
