"""Delivery of transitions to their rules' channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Transition


def enqueue_for(transitions: list[Transition]) -> None:
    """Create each transition's deliveries and send them."""
