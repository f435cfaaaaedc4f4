"""The sign-in pages: login, password change and reset, and single sign-on's two ends."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from .oidc import SingleSignOnCallbackView

View = Callable[..., HttpResponseBase]


def only_when(setting: str, absent: str) -> Callable[[View], View]:
    """The view answers 404 (`absent`) unless `setting` is on: pages for a feature that is
    off do not exist, rather than fail half way (a reset e-mail that cannot be sent)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not getattr(settings, setting):
                raise Http404(absent)
            return view(request, *args, **kwargs)

        return login_not_required(wrapped)

    return decorate


with_mail = only_when("PASSWORD_RESET_ENABLED", "Password reset needs e-mail (EMAIL_HOST).")
with_sso = only_when("OIDC_ENABLED", "Single sign-on is not configured.")


class SignOutView(auth_views.LogoutView):
    """Django's logout (POST only), saying so on the login page it lands on."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            messages.info(request, "You have been logged out.")
        return response


class SignInView(auth_views.LoginView):
    """Django's login, offering the identity provider and password reset when they exist."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["password_reset_enabled"] = settings.PASSWORD_RESET_ENABLED
        context["single_sign_on"] = settings.OIDC_PROVIDER_NAME if settings.OIDC_ENABLED else ""
        return context


password_reset = with_mail(
    auth_views.PasswordResetView.as_view(
        email_template_name="registration/password_reset_email.txt",
        subject_template_name="registration/password_reset_subject.txt",
    )
)
password_reset_done = with_mail(auth_views.PasswordResetDoneView.as_view())
password_reset_confirm = with_mail(auth_views.PasswordResetConfirmView.as_view())
password_reset_complete = with_mail(auth_views.PasswordResetCompleteView.as_view())

sso_start = with_sso(OIDCAuthenticationRequestView.as_view())
sso_callback = with_sso(SingleSignOnCallbackView.as_view())
