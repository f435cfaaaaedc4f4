"""Admins see who signed in through the identity provider, and with which groups."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import SingleSignOnIdentity


@admin.register(SingleSignOnIdentity)
class SingleSignOnIdentityAdmin(admin.ModelAdmin):
    """Read-only: every sign-in rewrites these from the identity provider's claims."""

    list_display = ("user", "subject", "issuer", "groups", "last_sign_in")
    search_fields = ("user__username", "=subject")
    readonly_fields = ("user", "issuer", "subject", "groups", "first_sign_in", "last_sign_in")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: SingleSignOnIdentity | None = None
    ) -> bool:
        return False
