from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Sandbox upstream (Codat-compatible)"
    default_auto_field = "django.db.models.BigAutoField"
