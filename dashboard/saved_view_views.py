"""Saved views over HTTP: save the filters a page shows, open, rename, share, delete, and
the menu and notes each of those pages shows (`shelf`).

Who may do what is `dashboard.saved_views`' to say; this module checks it
again on every POST, whatever the page showed. A stored query is validated by
its page's own filter form: when it is saved, and when it is opened as
someone's default (a default that no longer applies does not take the page
over: the page shows everything and says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from . import saved_views
from .forms import SyncFilterForm
from .models import SavedView
from .problem_forms import ProblemFilterForm, support_users
from .roles import LEAD, RUNNER, RoleRequired
from .saved_views import NO_VIEW, VIEW_PARAM, Refused
from .vocabulary import ViewPage

DETAIL = "dashboard/saved_view.html"


def filter_errors(page: str, query: str) -> list[str]:
    """What the page's own filter form says of a stored query (nothing: it applies)."""
    data = QueryDict(query)
    form: forms.Form
    if page == ViewPage.PROBLEMS:
        form = ProblemFilterForm(data, users=support_users())
    else:
        form = SyncFilterForm(data)
    if form.is_valid():
        return []
    return [str(error) for errors in form.errors.values() for error in errors]


@dataclass
class Shelf:
    """What a page shows of the saved views: its menu, and which view it shows, if any."""

    page: str
    # (view, whether this user may edit it), each with its `url`.
    views: list[tuple[SavedView, bool]] = field(default_factory=list)
    # The view the page shows (`?view=12`), if the user may open it.
    current: SavedView | None = None
    # The user's default, when it no longer applies, and why.
    broken_default: SavedView | None = None
    broken_errors: list[str] = field(default_factory=list)
    # The page's filters as a view would store them.
    query: str = ""
    may_share: bool = False
    # Set when the page should open the user's default instead.
    redirect: HttpResponse | None = None

    @property
    def everything_url(self) -> str:
        """The page without any view: not even the user's default."""
        return f"{reverse(saved_views.PAGES[self.page].url_name)}?{VIEW_PARAM}={NO_VIEW}"

    @property
    def clear_url(self) -> str:
        """The page with no filters: without the user's default too, if they have one."""
        if any(getattr(view, "is_default", False) for view, _ in self.views):
            return self.everything_url
        return reverse(saved_views.PAGES[self.page].url_name)

    @property
    def showing_default(self) -> bool:
        return self.current is not None and bool(getattr(self.current, "is_default", False))


def _view_named(raw: str | None) -> int | None:
    if raw is None or not raw.isdecimal() or len(raw) > 18:
        return None
    return int(raw)


def shelf(request: HttpRequest, page: str) -> Shelf:
    """The page's saved views for this user; with a redirect to their default when the
    page was opened with no query at all (and the default still applies)."""
    user = request.user
    views = saved_views.listed(user, page)
    for view in views:
        view.url = saved_views.page_url(view)  # type: ignore[attr-defined]
    found = Shelf(
        page,
        views=[(view, saved_views.may_edit(user, view)) for view in views],
        query=saved_views.normalise(page, request.GET),
        may_share=saved_views.may_share(user),
    )
    default = saved_views.default_of(views)
    htmx = getattr(request, "htmx", None)
    partial = bool(htmx) and not htmx.boosted  # type: ignore[union-attr]
    if default is not None and not request.GET and not partial:
        errors = filter_errors(page, default.query)
        if not errors:
            found.redirect = HttpResponseRedirect(default.url)  # type: ignore[attr-defined]
            return found
        found.broken_default, found.broken_errors = default, errors
    wanted = _view_named(request.GET.get(VIEW_PARAM))
    if wanted is not None:
        current = next((view for view in views if view.pk == wanted), None)
        if current is None:  # beyond the menu's length, or not the user's to open
            current = saved_views.openable(user, wanted)
        if current is not None and current.page == page:
            found.current = current
    return found


# --- the changes ---


class SaveForm(forms.Form):
    page = forms.ChoiceField(choices=ViewPage.choices, widget=forms.HiddenInput)
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    name = forms.CharField(max_length=saved_views.NAME_MAX)
    shared = forms.BooleanField(required=False, label="Share with the team")
    default = forms.BooleanField(required=False, label="Open this page with it")


class EditForm(forms.Form):
    name = forms.CharField(max_length=saved_views.NAME_MAX)
    shared = forms.BooleanField(required=False, label="Shared with the team")


def _errors(form: forms.Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _refuse_edit(request: HttpRequest, view: SavedView) -> None:
    if not saved_views.may_edit(request.user, view):
        raise RoleRequired(
            LEAD,
            "change or delete a view someone else shared",
            advice="You can still open it, and make it your own default.",
        )


def _openable_or_404(request: HttpRequest, pk: int) -> SavedView:
    view = saved_views.openable(request.user, pk)
    if view is None:
        raise Http404("No such saved view.")
    return view


@require_POST
def save_view(request: HttpRequest) -> HttpResponse:
    form = SaveForm(request.POST)
    if not form.is_valid():
        return HttpResponse(
            "The view was not saved: " + _errors(form),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    page, data = form.cleaned_data["page"], form.cleaned_data
    back = reverse(saved_views.PAGES[page].url_name)
    if data["shared"] and not saved_views.may_share(request.user):
        raise RoleRequired(RUNNER, "share a view with the team")
    query = saved_views.normalise(page, QueryDict(data["query"]))
    errors = filter_errors(page, query)
    if errors:
        messages.error(
            request, "The view was not saved: its filters are not valid. " + " ".join(errors)
        )
        return HttpResponseRedirect(f"{back}?{query}")
    try:
        view = saved_views.save_view(
            user=request.user,
            page=page,
            query=query,
            name=data["name"],
            shared=data["shared"],
            default=data["default"],
        )
    except Refused as refusal:
        messages.error(request, f"The view was not saved: {refusal}")
        return HttpResponseRedirect(f"{back}?{query}" if query else back)
    messages.success(request, f"Saved the view “{view.name}”.")
    return HttpResponseRedirect(saved_views.page_url(view))


@require_http_methods(["GET", "POST"])
def view_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A view's page: its filters, who made it; rename and share it (its editors), make it
    one's default (anyone who may open it)."""
    view = _openable_or_404(request, pk)
    editable = saved_views.may_edit(request.user, view)
    status = 200
    if request.method == "POST":
        _refuse_edit(request, view)
        form = EditForm(request.POST)
        if form.is_valid():
            shared = form.cleaned_data["shared"]
            if shared and not view.shared and not saved_views.may_share(request.user):
                raise RoleRequired(RUNNER, "share a view with the team")
            try:
                saved_views.edit_view(
                    user=request.user, view=view, name=form.cleaned_data["name"], shared=shared
                )
            except Refused as refusal:
                form.add_error("name", str(refusal))
            else:
                messages.success(request, f"Saved the view “{view.name}”.")
                return HttpResponseRedirect(reverse("saved-view-detail", args=[view.pk]))
        view.refresh_from_db()
        status = 400
    else:
        form = EditForm(initial={"name": view.name, "shared": view.shared})
    is_default = saved_views.is_default(request.user, view)
    context = {
        "view": view,
        "form": form,
        "editable": editable,
        "may_share": saved_views.may_share(request.user),
        "is_default": is_default,
        "filters": parse_qsl(view.query),
        "open_url": saved_views.page_url(view),
        "errors": filter_errors(view.page, view.query),
    }
    return render(request, DETAIL, context, status=status)


@require_POST
def view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = _openable_or_404(request, pk)
    _refuse_edit(request, view)
    name, page = view.name, view.page
    saved_views.delete_view(user=request.user, view=view)
    messages.success(request, f"Deleted the view “{name}”.")
    return HttpResponseRedirect(
        f"{reverse(saved_views.PAGES[page].url_name)}?{VIEW_PARAM}={NO_VIEW}"
    )


@require_POST
def view_default(request: HttpRequest, pk: int) -> HttpResponse:
    """Make the view one's default for its page (`on`), or stop it being."""
    view = _openable_or_404(request, pk)
    on = request.POST.get("default") == "on"
    saved_views.set_default(user=request.user, view=view, on=on)
    if on:
        messages.success(request, f"“{view.name}” now opens when you open this page.")
    else:
        messages.success(request, f"“{view.name}” is no longer your default.")
    return HttpResponseRedirect(reverse("saved-view-detail", args=[view.pk]))
