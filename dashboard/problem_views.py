"""Pages of the problems: the list by impact (and its CSV), one problem's page, and what
people do to a problem there.

Reading needs a support role, like every page. Triage (assign, note, ticket,
ignore, snooze, reopen) needs `dashboard.triage_problem` (runners and leads);
the playbook `dashboard.edit_playbook` and merging `dashboard.merge_problem`
(leads): checked here, on the server, whatever the page showed. Each change is
a POST (with its CSRF token) that calls `dashboard.problems.lifecycle` and
comes back to the problem's page; a change refused shows the page again with
the reason and what was typed (400).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import audit, saved_view_views
from . import preferences as user_preferences
from .markup import markdown
from .models import PlaybookVersion, Problem
from .problem_forms import (
    AssignForm,
    DetailForm,
    IgnoreForm,
    MergeForm,
    NoteForm,
    PlaybookForm,
    ProblemFilterForm,
    SnoozeForm,
    TicketForm,
    code_options,
    support_users,
)
from .problems import lifecycle, retries, selectors
from .problems.playbook import default_message, default_playbook, fill
from .roles import (
    LEAD,
    MERGE_PERMISSION,
    PLAYBOOK_PERMISSION,
    RUNNER,
    TRIAGE_PERMISSION,
    RoleRequired,
)
from .views import neutralise
from .vocabulary import ProblemState, ViewPage, docs_for, note_for, status_label

DETAIL = "dashboard/problem_detail.html"


def last_look(request: HttpRequest, *, mark: bool) -> datetime | None:
    """When the user looked at the Problems page before this visit; `mark`: this is a look."""
    user_id = request.user.pk
    assert user_id is not None  # LoginRequiredMiddleware
    return user_preferences.last_look(
        request.session, user_id, user_preferences.PROBLEMS, mark=mark
    )


def _query_without(request: HttpRequest, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def _errors(form: forms.Form) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


# --- the list ---


@require_GET
def problem_list(request: HttpRequest) -> HttpResponse:
    shelf = saved_view_views.shelf(request, ViewPage.PROBLEMS)
    if shelf.redirect is not None:
        return shelf.redirect
    form = ProblemFilterForm(request.GET, users=support_users())
    valid = form.is_valid()
    since = last_look(request, mark=True)
    context: dict[str, Any] = {
        "form": form,
        "code_options": code_options(form),
        "since": since,
        "page_query": _query_without(request, "after"),
        "is_first_page": not request.GET.get("after"),
        "shelf": shelf,
    }
    if valid:
        filters = form.filters(user_id=request.user.pk, since=since)
        context["filters"] = filters
        context["page"] = selectors.page(filters)
        context["headline"] = selectors.headline(filters)
    return render(request, "dashboard/problems.html", context, status=200 if valid else 400)


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "problem", "state", "status_code", "status", "data_type", "cause", "companies", "items",
    "syncs", "first_seen_utc", "last_seen_utc", "platforms", "assignee", "ticket_url", "url",
]  # fmt: skip


@require_GET
def problem_list_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = ProblemFilterForm(request.GET, users=support_users())
    if not form.is_valid():
        return HttpResponse(
            "Invalid filter: " + _errors(form),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters(user_id=request.user.pk, since=last_look(request, mark=False))
    rows = selectors.export_rows(filters)
    event = audit.export_started(request, query=_query_without(request, "after"))
    writer = csv.writer(_Echo())
    base = request.build_absolute_uri(reverse("problem-list"))

    def lines() -> Iterator[str]:
        # Counted as they go, and recorded however the stream ends.
        streamed, finished = 0, False
        try:
            yield writer.writerow(CSV_HEADER)
            for problem in rows.iterator(chunk_size=500):
                streamed += 1
                yield writer.writerow(_csv_values(problem, base))
            finished = True
        finally:
            audit.export_ended(event, rows=streamed, finished=finished)

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="problems-{stamp}.csv"'
    return response


def _csv_values(problem: Problem, base: str) -> list[Any]:
    platforms = sorted((problem.platforms or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    values = (
        problem.pk,
        problem.get_state_display(),
        problem.status_code,
        status_label(problem.status_code),
        problem.data_type,
        problem.cause,
        problem.companies_outstanding,
        problem.items_outstanding,
        problem.syncs_outstanding,
        problem.first_seen.isoformat(),
        problem.last_seen.isoformat(),
        "; ".join(f"{name}: {n}" for name, n in platforms),
        problem.assignee.get_username() if problem.assignee else "",
        problem.ticket_url,
        f"{base}{problem.pk}/",
    )
    return [neutralise(value) for value in values]


# --- one problem ---


def _problem_or_404(pk: int) -> Problem:
    problem = Problem.objects.select_related("assignee").filter(pk=pk).first()
    if problem is None:
        raise Http404("No such problem.")
    return problem


def _list_links(request: HttpRequest, name: str, cursor: str | None) -> dict[str, str | None]:
    """The first and next page of one of the page's lists, keeping the others where they are."""
    key = f"{name}_after"
    params = request.GET.copy()
    params.pop(key, None)
    first = f"?{params.urlencode()}#{name}" if request.GET.get(key) else None
    following = None
    if cursor:
        params[key] = cursor
        following = f"?{params.urlencode()}#{name}"
    return {"first": first, "next": following}


def _ticket_link(url: str) -> str:
    # Only a web address becomes a link (lifecycle allows no other; the admin might).
    return url if url.lower().startswith(("https://", "http://")) else ""


def _detail_context(
    request: HttpRequest, problem: Problem, *, failed: dict[str, forms.Form] | None = None
) -> dict[str, Any]:
    user = request.user
    query = DetailForm(request.GET)
    query.is_valid()
    wanted = query.cleaned_data.get
    may_triage = user.has_perm(TRIAGE_PERMISSION)
    may_edit = user.has_perm(PLAYBOOK_PERMISSION)
    may_merge = user.has_perm(MERGE_PERMISSION)
    merged = problem.state == ProblemState.MERGED
    code = problem.status_code

    companies = selectors.companies_page(problem, wanted("companies_after"))
    items = selectors.items_page(problem, wanted("items_after"))
    syncs = selectors.syncs_page(problem, wanted("syncs_after"))
    activity = selectors.activity_page(problem, wanted("activity_after"))

    template = problem.customer_message or default_message(code)
    # The first of the first page of companies is the one with most items.
    most = companies.rows[0] if companies.rows and not wanted("companies_after") else None
    affected = selectors.affected_company(problem, wanted("company"), most)
    filled = None
    if affected is not None:
        filled = fill(
            template,
            company_name=affected.company.name,
            sync_id=affected.sync_id,
            sync_utc=affected.sync_utc,
            cause=problem.cause,
            reconnect_link=affected.company.redirect_url,
        )
    choices = [(row.company, row.items) for row in companies.rows]
    if affected is not None and affected.company.pk not in {c.pk for c, _ in choices}:
        choices.insert(0, (affected.company, affected.items))

    forms_shown: dict[str, forms.Form] = {}
    if may_triage and not merged:
        users = support_users()
        forms_shown.update(
            assign=AssignForm(initial={"assignee": problem.assignee_id}, users=users),
            note=NoteForm(),
            ticket=TicketForm(initial={"url": problem.ticket_url}),
            ignore=IgnoreForm(),
            snooze=SnoozeForm(),
        )
    if may_edit and not merged:
        forms_shown["playbook"] = PlaybookForm(
            initial={
                "playbook": problem.playbook or default_playbook(code),
                "customer_message": template,
            }
        )
    if may_merge and not merged:
        forms_shown["merge"] = MergeForm()
    forms_shown.update(failed or {})

    platforms = sorted((problem.platforms or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "problem": problem,
        "merged": merged,
        "status_label": status_label(code),
        "note": note_for(code),
        "docs_url": docs_for(code),
        "trend": selectors.trend_days(problem.trend),
        "platforms": platforms,
        "ticket_link": _ticket_link(problem.ticket_url),
        "examples": selectors.examples(problem),
        "companies": companies,
        "items": items,
        "syncs": syncs,
        "activity": activity,
        "links": {
            "companies": _list_links(request, "companies", companies.next_cursor),
            "items": _list_links(request, "items", items.next_cursor),
            "syncs": _list_links(request, "syncs", syncs.next_cursor),
            "activity": _list_links(request, "activity", activity.next_cursor),
        },
        "query_form": query,
        "playbook_html": markdown(problem.playbook or default_playbook(code)),
        "playbook_is_default": not problem.playbook,
        "versions": selectors.playbook_versions(problem),
        "message_is_default": not problem.customer_message,
        "affected": affected,
        "filled": filled,
        "company_choices": choices,
        "may_triage": may_triage,
        "may_edit": may_edit,
        "may_merge": may_merge,
        "forms": forms_shown,
        "failed": next(iter(failed), "") if failed else "",
        "failed_form": next(iter(failed.values())) if failed else None,
        "retry_summary": retries.summary(problem),
    }


@require_GET
def problem_detail(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    context = _detail_context(request, problem)
    status = 400 if context["query_form"].errors else 200
    return render(request, DETAIL, context, status=status)


def _change(
    request: HttpRequest,
    problem: Problem,
    name: str,
    form: forms.Form,
    act: Callable[[dict[str, Any]], str],
    anchor: str = "",
) -> HttpResponse:
    """Do `act` with the form's data and go back to the problem; or show why not (400),
    the form keeping what was typed."""
    if form.is_valid():
        try:
            done = act(form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, done)
            return HttpResponseRedirect(problem.get_absolute_url() + anchor)
    context = _detail_context(request, problem, failed={name: form})
    return render(request, DETAIL, context, status=400)


def _may_triage(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(TRIAGE_PERMISSION):
        raise RoleRequired(
            RUNNER,
            action,
            advice="Viewers read problems; a support runner or lead assigns, notes, snoozes "
            "and ignores them.",
        )


@require_POST
def problem_assign(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "assign a problem")
    form = AssignForm(request.POST, users=support_users())

    def act(data: dict[str, Any]) -> str:
        assignee = User.objects.get(pk=data["assignee"]) if data["assignee"] else None
        lifecycle.assign(problem.pk, request.user, assignee)
        return f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."

    return _change(request, problem, "assign", form, act)


@require_POST
def problem_note(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "add a note to a problem")

    def act(data: dict[str, Any]) -> str:
        lifecycle.note(problem.pk, request.user, data["text"])
        return "Note added."

    return _change(request, problem, "note", NoteForm(request.POST), act, "#activity")


@require_POST
def problem_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "link a ticket to a problem")

    def act(data: dict[str, Any]) -> str:
        lifecycle.set_ticket(problem.pk, request.user, data["url"])
        return "Ticket link saved." if data["url"].strip() else "Ticket link removed."

    return _change(request, problem, "ticket", TicketForm(request.POST), act)


@require_POST
def problem_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "ignore a problem")

    def act(data: dict[str, Any]) -> str:
        lifecycle.ignore(problem.pk, request.user, data["reason"])
        return "Problem ignored: it leaves the list of problems that need attention."

    return _change(request, problem, "ignore", IgnoreForm(request.POST), act)


@require_POST
def problem_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "snooze a problem")

    def act(data: dict[str, Any]) -> str:
        lifecycle.snooze(
            problem.pk, request.user, until=data["until"], more_failures=data["more_failures"]
        )
        return "Problem snoozed."

    return _change(request, problem, "snooze", SnoozeForm(request.POST), act)


@require_POST
def problem_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    _may_triage(request, "reopen a problem")

    def act(data: dict[str, Any]) -> str:
        reopened = lifecycle.reopen(problem.pk, request.user)
        return f"Problem reopened: it is {reopened.get_state_display().lower()}."

    return _change(request, problem, "reopen", forms.Form(request.POST), act)


@require_POST
def problem_playbook(request: HttpRequest, pk: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    if not request.user.has_perm(PLAYBOOK_PERMISSION):
        raise RoleRequired(
            LEAD,
            "edit a problem's playbook",
            advice="Runners follow the playbook and copy the customer message; leads write them.",
        )
    code = problem.status_code

    def act(data: dict[str, Any]) -> str:
        # Left as the default, a text stays the default (and follows it if it changes).
        playbook = _unless_default(data["playbook"], default_playbook(code))
        message = _unless_default(data["customer_message"], default_message(code))
        saved = lifecycle.edit_playbook(problem.pk, request.user, playbook, message)
        if saved.playbook_version == problem.playbook_version:
            return "Nothing changed in the playbook."
        return f"Playbook saved as version {saved.playbook_version}."

    return _change(request, problem, "playbook", PlaybookForm(request.POST), act, "#playbook")


def _unless_default(text: str, default: str) -> str:
    cleaned = (text or "").replace("\r\n", "\n").strip()
    return "" if cleaned == default.strip() else cleaned


@require_GET
def playbook_version(request: HttpRequest, pk: int, version: int) -> HttpResponse:
    problem = _problem_or_404(pk)
    saved = get_object_or_404(PlaybookVersion, problem=problem, version=version)
    code = problem.status_code
    context = {
        "problem": problem,
        "saved": saved,
        "current": saved.version == problem.playbook_version,
        "playbook_html": markdown(saved.playbook or default_playbook(code)),
        "customer_message": saved.customer_message or default_message(code),
    }
    return render(request, "dashboard/problem_playbook.html", context)


@require_http_methods(["GET", "POST"])
def problem_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merge into another problem: the number asked for, then a confirmation, then a POST."""
    problem = _problem_or_404(pk)
    if not request.user.has_perm(MERGE_PERMISSION):
        raise RoleRequired(
            LEAD,
            "merge problems",
            advice="If two problems have one cause, a support lead can merge them.",
        )
    form = MergeForm(request.POST if request.method == "POST" else (request.GET or None))
    target = _merge_target(problem, form) if form.is_valid() else None
    if request.method == "POST" and target is not None:
        try:
            lifecycle.merge(problem.pk, target.pk, request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"#{problem.pk} merged into #{target.pk}.")
            return HttpResponseRedirect(target.get_absolute_url())
    target = target if not form.errors else None
    context = {
        "problem": problem,
        "target": target,
        "pair": [(problem, "This one"), (target, "Into")] if target else [],
        "form": form,
    }
    status = 400 if form.errors else 200
    return render(request, "dashboard/problem_merge.html", context, status=status)


def _merge_target(problem: Problem, form: MergeForm) -> Problem | None:
    number = form.cleaned_data["into"]
    target = Problem.objects.filter(pk=number).first()
    if target is None:
        form.add_error("into", f"There is no problem #{number}.")
    elif target.pk == problem.pk:
        form.add_error("into", "A problem cannot be merged into itself.")
    elif target.state == ProblemState.MERGED:
        form.add_error(
            "into", f"#{number} was merged into #{target.merged_into_id}: merge into that one."
        )
    elif problem.state == ProblemState.MERGED:
        form.add_error(None, f"#{problem.pk} was already merged into #{problem.merged_into_id}.")
    else:
        return target
    return None
