"""Single sign-on with OpenID Connect (the authorisation code flow, with PKCE and a nonce).

mozilla-django-oidc speaks the protocol; this module decides who the person
is (the issuer's subject, never an e-mail address), checks what the library
leaves out (the ID token's issuer, audience and expiry), and sets the
person's support roles from their identity-provider groups on every sign-in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

from dashboard.roles import GROUPS as SUPPORT_ROLES

from .models import SingleSignOnIdentity

log = logging.getLogger(__name__)

FAILED = "Single sign-on did not complete. Try again, or ask an administrator."
UNREACHABLE = "The identity provider could not be reached. Try again in a moment."
# How far apart the provider's clock and ours may be when an ID token is checked.
CLOCK_SKEW_SECONDS = 60


def set_support_roles(*, user: User, idp_groups: Iterable[str]) -> set[str]:
    """Give `user` exactly the support roles their identity-provider groups map to.

    Roles the mapping no longer grants are taken away; groups that are not
    support roles (made by an admin for something else) are left alone.
    """
    mapping = settings.OIDC_GROUP_ROLES
    wanted = {mapping[name] for name in idp_groups if name in mapping}
    roles = list(Group.objects.filter(name__in=SUPPORT_ROLES))
    missing = wanted - {role.name for role in roles}
    if missing:
        log.error("Single sign-on: the roles %s do not exist; run the migrations.", missing)
    user.groups.remove(*[role for role in roles if role.name not in wanted])
    user.groups.add(*[role for role in roles if role.name in wanted])
    return wanted & {role.name for role in roles}


def groups_claim(claims: dict[str, Any]) -> list[str]:
    """The identity-provider groups in the claims: a list of names, or one name."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(name) for name in value]
    return []


class SingleSignOnBackend(OIDCAuthenticationBackend):
    """Signs in the person the identity provider vouches for, on the callback only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Off, the library's settings are blank and its constructor would refuse them.
        if settings.OIDC_ENABLED:
            super().__init__(*args, **kwargs)
        else:
            self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        # The callback view always passes the nonce it stored when the flow
        # began. Without it this is some other sign-in (a password form that
        # someone gave `?code=…&state=…`), which must not exchange a code.
        if not settings.OIDC_ENABLED or kwargs.get("nonce") is None:
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id: int) -> User | None:
        """The session's user, while single sign-on is on and the user is active."""
        if not settings.OIDC_ENABLED:
            return None
        user = super().get_user(user_id)
        return user if self.user_can_authenticate(user) else None

    def get_payload_data(self, token: bytes | str, key: Any) -> dict[str, Any]:
        """The verified token's claims, refused unless this issuer made it for this client.

        Verified here rather than by the library, which checks neither issuer
        nor audience and lets PyJWT's time errors escape as a server error:
        every refusal is a `SuspiciousOperation`, and the clocks may differ
        by `CLOCK_SKEW_SECONDS`.
        """
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm != self.OIDC_RP_SIGN_ALGO:
                raise SuspiciousOperation(f"ID token signed with {algorithm!r}")
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=settings.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_OP_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        return payload

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims and the userinfo endpoint's, which must be about the same person.

        Some providers put the groups in the ID token only, others in userinfo only.
        """
        userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo is about another subject than the ID token")
        return {**payload, **userinfo}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(
            sso_identity__issuer=settings.OIDC_OP_ISSUER, sso_identity__subject=claims["sub"]
        )

    def create_user(self, claims: dict[str, Any]) -> User:
        with transaction.atomic():
            user = self.UserModel.objects.create_user(
                _free_username(claims), email=str(claims.get("email") or "")
            )
            # No password: this person signs in at the identity provider only.
            user.set_unusable_password()
            user.save(update_fields=["password"])
            SingleSignOnIdentity.objects.create(
                user=user, issuer=settings.OIDC_OP_ISSUER, subject=claims["sub"]
            )
        log.info("Single sign-on: new user %s for subject %s", user.get_username(), claims["sub"])
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        """On every sign-in: name, address and roles as the identity provider has them now."""
        user.email = str(claims.get("email") or user.email)
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["email", "first_name", "last_name"])
        idp_groups = groups_claim(claims)
        roles = set_support_roles(user=user, idp_groups=idp_groups)
        SingleSignOnIdentity.objects.filter(user=user).update(
            groups=idp_groups, last_sign_in=timezone.now()
        )
        if not roles:
            log.warning(
                "Single sign-on: %s has no support role (identity-provider groups %s)",
                user.get_username(),
                idp_groups,
            )
        log.info("Single sign-on: %s signed in with roles %s", user.get_username(), sorted(roles))
        return user


def _free_username(claims: dict[str, Any]) -> str:
    """The person's name at the identity provider, made unique beside local users."""
    base = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])[:140]
    user_model = get_user_model()
    candidate, number = base, 2
    while user_model.objects.filter(username=candidate).exists():
        candidate, number = f"{base}-{number}", number + 1
    return candidate


class SingleSignOnCallbackView(OIDCAuthenticationCallbackView):
    """The identity provider's redirect back; any failure lands on the login page, explained."""

    failure_message = FAILED

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get(request)
        except (SuspiciousOperation, KeyError) as exc:
            # KeyError: no key in the provider's set matches the token's.
            log.warning("Single sign-on refused: %r", exc)
        except requests.HTTPError as exc:
            # The provider answered, and refused (a wrong client secret, a used code).
            log.warning("Single sign-on: the identity provider refused the exchange: %s", exc)
        except IntegrityError as exc:
            # The same person's first sign-in twice at once: the other one won.
            log.warning("Single sign-on: a simultaneous first sign-in: %s", exc)
        except requests.RequestException as exc:
            log.warning("Single sign-on: the identity provider could not be reached: %s", exc)
            self.failure_message = UNREACHABLE
        return self.login_failure()

    def login_failure(self) -> HttpResponse:
        messages.error(self.request, self.failure_message)
        return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))
