"""Imports every check module so each registers itself. A new module is added here."""

from . import health, webhooks  # noqa: F401
