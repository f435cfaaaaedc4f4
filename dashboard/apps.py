from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Sync Health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .middleware import forget_zone

        user_logged_in.connect(forget_zone, dispatch_uid="dashboard.forget_zone")
