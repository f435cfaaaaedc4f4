"""Saved views: a page's filters under a name, the user's own or shared with the team.

Who may do what:

- everyone with a support role saves views of their own, opens their own and
  the team's shared ones, and picks one of those as their default for a page;
- sharing a view with the team needs `dashboard.share_savedview` (runners
  and leads): what the whole team sees listed should come from those who act
  on it, not from every reader;
- a view is edited (renamed, shared or unshared) and deleted by its owner;
  a shared one also by a lead (`dashboard.manage_shared_savedview`), who keeps
  the team's list tidy. Nobody else sees someone's personal view at all.

A view stores its page's query string normalised: only that page's own filter
parameters, in a fixed order, empty values dropped, never the page cursor
(`after`). The page validates it with its own filter form when it is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as UserModel
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from .models import DefaultView, SavedView
from .roles import MANAGE_SHARED_VIEWS_PERMISSION, SHARE_VIEW_PERMISSION
from .vocabulary import ViewPage

User = UserModel | AnonymousUser

NAME_MAX = 100
QUERY_MAX = 2000  # SavedView.query's length
# The views one person keeps for a page, and the most a page's menu lists.
OWN_MAX = 50
LISTED_MAX = 100
# The parameter that names the view a page shows (`?view=12`), or none (`?view=none`:
# the page without the user's default).
VIEW_PARAM = "view"
NO_VIEW = "none"


@dataclass(frozen=True)
class PageSpec:
    url_name: str
    # The page's filter parameters, in the order a stored query lists them.
    params: tuple[str, ...]
    # Those that take several values (the history's status codes).
    multiple: frozenset[str] = frozenset()


PAGES: dict[str, PageSpec] = {
    ViewPage.SUMMARY: PageSpec("summary", ("range", "start", "end", "platform")),
    ViewPage.HISTORY: PageSpec(
        "sync-history",
        (
            "q",
            "range",
            "start",
            "end",
            "code",
            "category",
            "platform",
            "failed_items",
            "state",
            "company",
            "fingerprint",
            "problem",
            "sort",
            "dir",
        ),
        multiple=frozenset({"code"}),
    ),
    ViewPage.PROBLEMS: PageSpec(
        "problem-list", ("state", "code", "platform", "assignee", "changed", "sort")
    ),
}


def _pk(user: User) -> int:
    """The signed-in user's ID (every page needs a sign-in)."""
    assert user.pk is not None
    return int(user.pk)


class Refused(Exception):
    """A change the rules refuse, with a sentence for the person who asked."""


def normalise(page: str, params: QueryDict) -> str:
    """The page's own filters in `params`, as the query string a view stores."""
    spec = PAGES[page]
    pairs: list[tuple[str, str]] = []
    for name in spec.params:
        values = [" ".join(v.split()) for v in params.getlist(name)]
        values = [v for v in values if v]
        if name in spec.multiple:
            pairs += [(name, v) for v in sorted(set(values))]
        elif values:
            pairs.append((name, values[-1]))
    return urlencode(pairs)


def visible(user: User, page: str) -> QuerySet[SavedView]:
    """The views of a page this user may open: their own and the team's shared ones,
    each marked `is_default` (the user's default for the page), by name."""
    defaults = DefaultView.objects.filter(user_id=_pk(user), page=page, view=OuterRef("pk"))
    return (
        SavedView.objects.filter(Q(owner_id=_pk(user)) | Q(shared=True), page=page)
        .select_related("owner")
        .annotate(is_default=Exists(defaults))
        .order_by("name", "pk")
    )


def listed(user: User, page: str) -> list[SavedView]:
    return list(visible(user, page)[:LISTED_MAX])


def may_open(user: User, view: SavedView) -> bool:
    return view.owner_id == user.pk or view.shared


def may_edit(user: User, view: SavedView) -> bool:
    if view.owner_id == user.pk:
        return True
    return view.shared and user.has_perm(MANAGE_SHARED_VIEWS_PERMISSION)


def may_share(user: User) -> bool:
    return user.has_perm(SHARE_VIEW_PERMISSION)


def openable(user: User, pk: int) -> SavedView | None:
    """The view if it exists and this user may open it (else, to them, it does not exist)."""
    view = SavedView.objects.select_related("owner").filter(pk=pk).first()
    return view if view is not None and may_open(user, view) else None


def _check_name(owner_id: int, page: str, name: str, *, other_than: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise Refused("Give the view a name.")
    if len(name) > NAME_MAX:
        raise Refused(f"A view's name is at most {NAME_MAX} characters.")
    taken = SavedView.objects.filter(owner_id=owner_id, page=page, name=name)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise Refused(f"You already have a view named “{name}” on this page.")
    return name


def save_view(
    *, user: User, page: str, query: str, name: str, shared: bool, default: bool
) -> SavedView:
    """A new view of the user's, of filters already normalised and validated."""
    if shared and not may_share(user):
        raise Refused("Only runners and leads share views with the team.")
    name = _check_name(_pk(user), page, name)
    if len(query) > QUERY_MAX:
        raise Refused("Those filters are too long to save as a view.")
    if SavedView.objects.filter(owner_id=_pk(user), page=page).count() >= OWN_MAX:
        raise Refused(f"You have {OWN_MAX} views on this page already: delete one first.")
    try:
        with transaction.atomic():
            view = SavedView.objects.create(
                owner_id=_pk(user), page=page, name=name, query=query, shared=shared
            )
    except IntegrityError:  # the same name saved twice at once
        raise Refused(f"You already have a view named “{name}” on this page.") from None
    if default:
        set_default(user=user, view=view, on=True)
    return view


def edit_view(*, user: User, view: SavedView, name: str, shared: bool) -> SavedView:
    """Rename, share or unshare: the owner, or a lead for a shared view."""
    if not may_edit(user, view):
        raise PermissionError(view.pk)
    if shared and not view.shared and not may_share(user):
        raise Refused("Only runners and leads share views with the team.")
    view.name = _check_name(view.owner_id, view.page, name, other_than=view.pk)
    view.shared = shared
    view.updated_at = timezone.now()
    view.save(update_fields=["name", "shared", "updated_at"])
    if not shared:
        # Whoever made it their default loses it with it; its owner keeps theirs.
        DefaultView.objects.filter(view=view).exclude(user_id=view.owner_id).delete()
    return view


def delete_view(*, user: User, view: SavedView) -> None:
    if not may_edit(user, view):
        raise PermissionError(view.pk)
    view.delete()


def set_default(*, user: User, view: SavedView, on: bool) -> None:
    """Make the view the user's default for its page (replacing theirs), or stop it being."""
    if on:
        DefaultView.objects.update_or_create(
            user_id=_pk(user), page=view.page, defaults={"view": view}
        )
    else:
        DefaultView.objects.filter(user_id=_pk(user), view=view).delete()


def default_of(views: Iterable[SavedView]) -> SavedView | None:
    """The user's default among the views `visible` listed."""
    return next((view for view in views if getattr(view, "is_default", False)), None)


def page_url(view: SavedView) -> str:
    """Where the view opens: its page, its filters and its name."""
    query = f"{view.query}&" if view.query else ""
    return f"{reverse(PAGES[view.page].url_name)}?{query}{VIEW_PARAM}={view.pk}"


def is_default(user: User, view: SavedView) -> bool:
    return DefaultView.objects.filter(user_id=_pk(user), view=view).exists()
