"""Channel secrets encrypted at rest (Fernet: AES with an HMAC).

The key comes from `ALERTS_ENCRYPTION_KEY` when set (so it can be rotated apart
from the session key), else is derived from `SECRET_KEY`. A secret is written
once and read only by the worker that sends; no page shows it again.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class UndecryptableSecret(Exception):
    """The stored secret was encrypted with another key: re-enter it."""


def _fernet() -> Fernet:
    material = settings.ALERTS_ENCRYPTION_KEY or settings.SECRET_KEY
    key = hashlib.sha256(b"synchealth-alerts-channel-secret:" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "This channel's secret cannot be read with the current key; enter it again."
        ) from None
