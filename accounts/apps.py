from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Signing in"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_in

        from dashboard.roles import GROUPS

        from .sessions import start_session

        unknown = sorted(set(settings.OIDC_GROUP_ROLES.values()) - set(GROUPS))
        if unknown:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLES names {', '.join(map(repr, unknown))}; the roles are "
                f"{', '.join(map(repr, GROUPS))}."
            )
        user_logged_in.connect(start_session, dispatch_uid="accounts.start_session")
