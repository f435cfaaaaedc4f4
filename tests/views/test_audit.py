"""The retry audit: its filters say what is wrong with them."""

from __future__ import annotations

import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    "query, message",
    [
        ("end=9999-12-31", "Enter a date in 2999 or earlier."),
        ("start=0001-01-01", "Enter a date in 2000 or later."),
        ("start=2026-02-03&end=2026-02-01", "The start date must not be after the end date."),
        ("company=zzz", "Enter a valid UUID."),
    ],
)
def test_an_invalid_audit_filter_is_a_400_that_says_why(viewer_client, query, message):
    response = viewer_client.get(reverse("retry-audit") + "?" + query)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_valid_audit_filter_is_a_200(viewer_client):
    response = viewer_client.get(reverse("retry-audit") + "?start=2026-01-01&end=2999-12-31")

    assert response.status_code == 200
    assert 'class="error"' not in response.content.decode()
