"""Saved views: a page's filters under a name, personal or shared, and a default per page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import DefaultView, Problem, SavedView
from tests.support.factories import make_company
from tests.support.html_policy import inline_code
from tests.support.users import make_user

HISTORY = reverse("sync-history")


def _save(client: Client, page: str = "history", query: str = "", **fields):
    data = {"page": page, "query": query, "name": "Mine", **fields}
    return client.post(reverse("saved-view-create"), data)


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def cast(db):
    make_company(platform_name="Xero")  # a platform the filters know
    return {
        "viewer": make_user("viewer", "Support viewer"),
        "other viewer": make_user("viewer2", "Support viewer"),
        "runner": make_user("runner", "Support runner"),
        "lead": make_user("lead", "Support lead"),
    }


def _shared(owner, name: str = "Failed at Xero", query: str = "category=failed&platform=Xero"):
    return SavedView.objects.create(
        owner=owner, page="history", name=name, query=query, shared=True
    )


# --- saving ---


def test_a_view_stores_only_the_pages_own_filters_normalised_and_never_a_cursor(cast):
    client = _as(cast["viewer"])
    query = "after=abc&code=5130&zzz=1&q=+Acme++Ltd+&code=4000&range=all&code=5130&category="
    response = _save(client, query=query, name="  Acme   failures ")
    view = SavedView.objects.get()
    assert view.query == "q=Acme+Ltd&range=all&code=4000&code=5130"
    assert view.name == "Acme failures" and view.owner == cast["viewer"] and not view.shared
    assert response.status_code == 302
    assert response["Location"] == f"{HISTORY}?{view.query}&view={view.pk}"
    body = client.get(response["Location"]).content.decode()
    assert 'data-testid="view-note"' in body and "Acme failures" in body


def test_each_page_keeps_its_own_parameters(cast):
    client = _as(cast["viewer"])
    _save(client, page="summary", query="range=30d&platform=Xero&code=5130&q=x", name="S")
    _save(client, page="problems", query="state=all&changed=on&sort=recent&after=x&q=y", name="P")
    stored = dict(SavedView.objects.values_list("page", "query"))
    assert stored == {
        "summary": "range=30d&platform=Xero",
        "problems": "state=all&changed=on&sort=recent",
    }


def test_a_filter_the_page_refuses_is_not_saved(cast):
    client = _as(cast["viewer"])
    response = _save(client, query="range=custom&start=2026-02-01&end=2026-01-01")
    assert response.status_code == 302
    assert not SavedView.objects.exists()
    page = client.get(response["Location"])
    assert "The view was not saved: its filters are not valid." in page.content.decode()
    assert "The start date must not be after the end date." in page.content.decode()


def test_two_views_of_one_page_may_not_share_a_name(cast):
    client = _as(cast["viewer"])
    _save(client, query="range=all", name="Everything")
    response = _save(client, query="range=30d", name="Everything")
    assert SavedView.objects.count() == 1
    body = client.get(response["Location"]).content.decode()
    assert "You already have a view named “Everything” on this page." in body


def test_filters_too_long_to_store_are_refused_clearly(cast):
    client = _as(cast["viewer"])
    # 199 characters, a valid search: twelve times that once encoded.
    response = _save(client, query="q=" + "\N{GRINNING FACE}" * 199)
    assert not SavedView.objects.exists()
    body = client.get(response["Location"]).content.decode()
    assert "Those filters are too long to save as a view." in body


def test_a_view_needs_a_name_and_a_known_page(cast):
    client = _as(cast["viewer"])
    assert _save(client, name="").status_code == 400
    assert _save(client, page="admin").status_code == 400
    assert not SavedView.objects.exists()


def test_a_viewer_saves_personal_views_but_may_not_share(cast):
    client = _as(cast["viewer"])
    refused = _save(client, query="range=all", shared="on")
    assert refused.status_code == 403
    assert "Support runner role to share a view with the team" in refused.content.decode()
    assert not SavedView.objects.exists()
    # The form offers no sharing to a viewer.
    assert 'name="shared"' not in client.get(HISTORY).content.decode()


@pytest.mark.parametrize("who", ["runner", "lead"])
def test_runners_and_leads_share_views(cast, who):
    client = _as(cast[who])
    assert 'name="shared"' in client.get(HISTORY).content.decode()
    _save(client, query="category=failed", shared="on")
    assert SavedView.objects.get().shared


def test_saving_needs_the_csrf_token(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast["viewer"])
    assert _save(client, query="range=all").status_code == 403
    assert not SavedView.objects.exists()


# --- who sees and who changes ---


def test_a_personal_view_is_its_owners_alone(cast):
    mine = SavedView.objects.create(owner=cast["viewer"], page="history", name="Mine", query="")
    other, lead = _as(cast["other viewer"]), _as(cast["lead"])
    for client in (other, lead):
        assert "Mine" not in client.get(HISTORY).content.decode()
        assert client.get(reverse("saved-view-detail", args=[mine.pk])).status_code == 404
        assert client.post(reverse("saved-view-delete", args=[mine.pk])).status_code == 404
        assert client.get(f"{HISTORY}?view={mine.pk}").content.decode().count("view-note") == 0
    assert SavedView.objects.filter(pk=mine.pk).exists()


def test_a_shared_view_is_listed_for_everyone_and_opens_for_them(cast):
    view = _shared(cast["runner"])
    client = _as(cast["other viewer"])
    body = client.get(HISTORY).content.decode()
    assert f'<li data-view="{view.pk}">' in body and "shared by runner" in body
    opened = client.get(f"{HISTORY}?category=failed&platform=Xero&view={view.pk}")
    assert opened.status_code == 200
    assert "Showing the view <strong>Failed at Xero</strong>" in opened.content.decode()


def test_a_viewer_sees_no_edit_controls_on_someone_elses_shared_view_and_is_refused(cast):
    view = _shared(cast["runner"])
    client = _as(cast["viewer"])
    menu = client.get(HISTORY).content.decode()
    assert 'data-testid="edit-view"' not in menu
    page = client.get(reverse("saved-view-detail", args=[view.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="view-edit"' not in body and 'data-testid="delete-view"' not in body
    assert 'data-testid="view-readonly"' in body
    renamed = client.post(reverse("saved-view-detail", args=[view.pk]), {"name": "Mine now"})
    deleted = client.post(reverse("saved-view-delete", args=[view.pk]))
    assert renamed.status_code == deleted.status_code == 403
    assert "Support lead role to change or delete a view someone else shared" in (
        renamed.content.decode()
    )
    view.refresh_from_db()
    assert view.name == "Failed at Xero" and view.shared


def test_the_owner_renames_and_unshares_and_others_lose_it(cast):
    view = _shared(cast["runner"])
    DefaultView.objects.create(user=cast["viewer"], page="history", view=view)
    DefaultView.objects.create(user=cast["runner"], page="history", view=view)
    owner = _as(cast["runner"])
    assert 'data-testid="edit-view"' in owner.get(HISTORY + "?view=none").content.decode()
    response = owner.post(reverse("saved-view-detail", args=[view.pk]), {"name": "Xero failures"})
    assert response.status_code == 302
    view.refresh_from_db()
    assert view.name == "Xero failures" and not view.shared
    # The viewer's default went with it; the owner keeps theirs.
    assert list(DefaultView.objects.values_list("user__username", flat=True)) == ["runner"]
    assert _as(cast["viewer"]).get(reverse("saved-view-detail", args=[view.pk])).status_code == 404


def test_a_lead_edits_and_deletes_someone_elses_shared_view(cast):
    view = _shared(cast["runner"])
    lead = _as(cast["lead"])
    assert 'data-testid="edit-view"' in lead.get(HISTORY).content.decode()
    lead.post(reverse("saved-view-detail", args=[view.pk]), {"name": "Tidied", "shared": "on"})
    view.refresh_from_db()
    assert view.name == "Tidied" and view.shared and view.owner == cast["runner"]
    response = lead.post(reverse("saved-view-delete", args=[view.pk]))
    assert response.status_code == 302
    assert not SavedView.objects.exists()


def test_a_rename_to_a_name_taken_is_refused_on_the_form(cast):
    SavedView.objects.create(owner=cast["viewer"], page="history", name="A", query="")
    view = SavedView.objects.create(owner=cast["viewer"], page="history", name="B", query="")
    response = _as(cast["viewer"]).post(reverse("saved-view-detail", args=[view.pk]), {"name": "A"})
    assert response.status_code == 400
    assert "You already have a view named “A” on this page." in response.content.decode()


def test_a_view_name_is_shown_as_text(cast):
    view = _shared(cast["runner"], name='<script>alert("x")</script>')
    client = _as(cast["viewer"])
    for url in (HISTORY, reverse("saved-view-detail", args=[view.pk])):
        body = client.get(url).content.decode()
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
        assert inline_code(body) == []


# --- the default view ---


def test_a_default_view_opens_the_page_and_can_be_escaped(cast):
    view = _shared(cast["runner"])
    client = _as(cast["viewer"])
    client.post(reverse("saved-view-default", args=[view.pk]), {"default": "on"})
    opened = client.get(HISTORY)
    assert opened.status_code == 302
    assert opened["Location"] == f"{HISTORY}?category=failed&platform=Xero&view={view.pk}"
    body = client.get(opened["Location"]).content.decode()
    note = re.search(r'<p class="note" data-testid="view-note">(.*?)</p>', body, re.S).group(1)
    assert "Showing your default view <strong>Failed at Xero</strong>" in note
    assert f'href="{HISTORY}?view=none"' in note
    everything = client.get(f"{HISTORY}?view=none")
    assert everything.status_code == 200
    assert 'data-testid="view-note"' not in everything.content.decode()
    # Another user's page is not theirs to change.
    assert _as(cast["lead"]).get(HISTORY).status_code == 200


def test_one_default_per_page_and_it_can_be_dropped(cast):
    first = SavedView.objects.create(
        owner=cast["viewer"], page="problems", name="1", query="state=all"
    )
    second = SavedView.objects.create(
        owner=cast["viewer"], page="problems", name="2", query="sort=recent"
    )
    client = _as(cast["viewer"])
    client.post(reverse("saved-view-default", args=[first.pk]), {"default": "on"})
    client.post(reverse("saved-view-default", args=[second.pk]), {"default": "on"})
    assert list(DefaultView.objects.values_list("view", flat=True)) == [second.pk]
    assert client.get(reverse("problem-list"))["Location"].endswith(
        f"?sort=recent&view={second.pk}"
    )
    client.post(reverse("saved-view-default", args=[second.pk]), {"default": "off"})
    assert client.get(reverse("problem-list")).status_code == 200


def test_the_dashboards_default_view_applies_its_range(cast):
    client = _as(cast["viewer"])
    _save(client, page="summary", query="range=30d", name="Month", default="on")
    opened = client.get(reverse("summary"))
    assert opened.status_code == 302
    body = client.get(opened["Location"]).content.decode()
    assert "Last 30 days" in body and "Showing your default view <strong>Month</strong>" in body


def test_a_default_that_no_longer_applies_shows_everything_and_says_why(cast):
    problem = Problem.objects.create(status_code=5130, cause="Period closed")
    client = _as(cast["viewer"])
    _save(client, query=f"problem={problem.pk}", name="That problem", default="on")
    view = SavedView.objects.get()
    problem.delete()
    page = client.get(HISTORY)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="view-broken"' in body
    missing = view.query.removeprefix("problem=")
    assert f"“That problem” no longer applies (There is no problem #{missing}.)" in body
    # Opened by its link, the page says what is wrong with it, as for any filter.
    opened = client.get(saved_views_url(view))
    assert opened.status_code == 400
    assert f"There is no problem #{view.query[8:]}." in opened.content.decode()
    detail = client.get(reverse("saved-view-detail", args=[view.pk])).content.decode()
    assert 'data-testid="view-errors"' in detail


def saved_views_url(view: SavedView) -> str:
    from dashboard.saved_views import page_url

    return page_url(view)


def test_htmx_requests_of_the_history_never_redirect_to_the_default(cast):
    view = SavedView.objects.create(
        owner=cast["viewer"], page="history", name="A", query="range=all"
    )
    DefaultView.objects.create(user=cast["viewer"], page="history", view=view)
    response = _as(cast["viewer"]).get(HISTORY, headers={"HX-Request": "true"})
    assert response.status_code == 200


def test_the_menu_costs_one_query(cast, django_assert_max_num_queries):
    client = _as(cast["viewer"])
    client.get(reverse("problem-list"))
    with django_assert_max_num_queries(40) as few:
        client.get(reverse("problem-list"))
    for n in range(10):
        SavedView.objects.create(
            owner=cast["runner"], page="problems", name=f"View {n}", query="", shared=True
        )
    with django_assert_max_num_queries(len(few.captured_queries) + 1):
        body = client.get(reverse("problem-list")).content.decode()
    assert body.count('data-testid="open-view"') == 10
