"""Imports every check module so each registers itself. A new module is added here."""

# One import a line: modules are added by different hands.
from . import (
    companies,  # noqa: F401
    health,  # noqa: F401
    platforms,  # noqa: F401
    problems,  # noqa: F401
    webhooks,  # noqa: F401
)
