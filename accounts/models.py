from __future__ import annotations

from django.conf import settings
from django.db import models


class SingleSignOnIdentity(models.Model):
    """Who a user is at the identity provider: the issuer and subject, which never change.

    Users are found by this, never by e-mail address: an account at the
    identity provider that claims a local admin's address gets an account of
    its own, not the admin's.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    # What the identity provider said at the last sign-in, for an admin asking
    # why someone has (or lacks) a role.
    groups = models.JSONField("groups at last sign-in", default=list, blank=True)
    first_sign_in = models.DateTimeField(auto_now_add=True)
    last_sign_in = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_sso_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
