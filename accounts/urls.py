"""The sign-in URLs, under /accounts/ (the paths of `django.contrib.auth.urls`)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", views.SignOutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # These four answer 404 unless e-mail is configured (PASSWORD_RESET_ENABLED).
    path("password_reset/", views.password_reset, name="password_reset"),
    path("password_reset/done/", views.password_reset_done, name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("reset/done/", views.password_reset_complete, name="password_reset_complete"),
    # These two answer 404 unless single sign-on is configured (OIDC_ENABLED).
    path("sso/start/", views.sso_start, name="sso-start"),
    path("sso/callback/", views.sso_callback, name="sso-callback"),
]
