"""The session's user is read with their time preference, in one query."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard.auth import UserWithPreferenceBackend
from dashboard.models import UserPreference

pytestmark = pytest.mark.django_db


def test_the_user_comes_with_their_preference_in_one_query(viewer):
    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone="Asia/Tokyo")
    with CaptureQueriesContext(connection) as ctx:
        user = UserWithPreferenceBackend().get_user(viewer.pk)
        assert user.sync_health_preference.active_zone == "Asia/Tokyo"
    assert len(ctx.captured_queries) == 1


def test_a_user_without_preferences_costs_no_second_query(viewer):
    with CaptureQueriesContext(connection) as ctx:
        user = UserWithPreferenceBackend().get_user(viewer.pk)
        assert getattr(user, "sync_health_preference", None) is None
    assert len(ctx.captured_queries) == 1


def test_an_inactive_or_missing_user_is_nobody(viewer):
    User.objects.filter(pk=viewer.pk).update(is_active=False)
    assert UserWithPreferenceBackend().get_user(viewer.pk) is None
    assert UserWithPreferenceBackend().get_user(10**9) is None


def test_a_deactivated_user_is_sent_back_to_login(viewer_client, viewer):
    assert viewer_client.get(reverse("summary")).status_code == 200
    User.objects.filter(pk=viewer.pk).update(is_active=False)
    response = viewer_client.get(reverse("summary"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_page_shows_times_in_the_chosen_zone(viewer_client, viewer):
    UserPreference.objects.create(user=viewer, use_local_time=True, time_zone="Asia/Tokyo")
    assert b"Times: Asia/Tokyo" in viewer_client.get(reverse("summary")).content
