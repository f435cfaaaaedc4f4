"""Pages of the channels and the delivery log: leads only.

A channel's destination URL and signing secret are written here and never
shown again: pages show `Channel.display` (scheme and host). Reading channels
needs `alerts.view_channel`, the log `alerts.view_delivery`, any change
`alerts.manage_alerts`; each change is a POST with its CSRF token.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from dashboard.roles import ALERTS_PERMISSION, LEAD, RoleRequired

from . import selectors
from .delivery import send_test
from .forms import ChannelForm, DeliveryFilterForm
from .models import Channel, Delivery
from .views import may_manage
from .vocabulary import DeliveryState

VIEW_CHANNELS = "alerts.view_channel"
VIEW_DELIVERIES = "alerts.view_delivery"
ADVICE = "Support leads set up where alerts go and read the delivery log."
FINISHED = (DeliveryState.DELIVERED, DeliveryState.FAILED)
RECENT_DELIVERIES = 10


def _may_read(request: HttpRequest, permission: str, action: str) -> None:
    if not request.user.has_perm(permission):
        raise RoleRequired(LEAD, action, advice=ADVICE)


@require_GET
def channel_list(request: HttpRequest) -> HttpResponse:
    _may_read(request, VIEW_CHANNELS, "see the alert channels")
    context = {
        "channels": Channel.objects.order_by("name", "pk"),
        "may_manage": request.user.has_perm(ALERTS_PERMISSION),
    }
    return render(request, "alerts/channel_list.html", context)


def _form_page(
    request: HttpRequest,
    form: ChannelForm,
    *,
    status: int = 200,
    recent: list[Delivery] | None = None,
) -> HttpResponse:
    context = {
        "form": form,
        "channel": form.instance if form.editing else None,
        "recent": recent or [],
    }
    return render(request, "alerts/channel_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
def channel_new(request: HttpRequest) -> HttpResponse:
    may_manage(request, "add an alert channel")
    if request.method == "POST":
        form = ChannelForm(request.POST, instance=Channel(created_by_id=request.user.pk))
        if form.is_valid():
            channel = form.save()
            messages.success(
                request, f"Channel “{channel.name}” added. Send it a test to check it works."
            )
            return HttpResponseRedirect(reverse("alert-channel-list"))
        return _form_page(request, form, status=400)
    return _form_page(request, ChannelForm())


@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    may_manage(request, "change an alert channel")
    recent = list(
        channel.deliveries.select_related("rule")
        .defer("payload", "body")
        .order_by("-pk")[:RECENT_DELIVERIES]
    )
    if request.method == "POST":
        form = ChannelForm(request.POST, instance=channel)
        if form.is_valid():
            form.save()
            messages.success(request, f"Channel “{channel.name}” saved.")
            return HttpResponseRedirect(reverse("alert-channel-list"))
        return _form_page(request, form, status=400, recent=recent)
    return _form_page(request, ChannelForm(instance=channel), recent=recent)


@require_http_methods(["GET", "POST"])
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    may_manage(request, "delete an alert channel")
    if request.method == "POST":
        channel.delete()
        messages.success(request, f"Channel “{channel.name}” deleted, with its delivery log.")
        return HttpResponseRedirect(reverse("alert-channel-list"))
    context = {
        "what": f"the channel “{channel.name}”",
        "consequence": "Rules that send to it stop sending there; its delivery log goes too.",
        "action": reverse("alert-channel-delete", args=[channel.pk]),
        "back": reverse("alert-channel-edit", args=[channel.pk]),
    }
    return render(request, "alerts/confirm_delete.html", context)


@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    channel = get_object_or_404(Channel, pk=pk)
    may_manage(request, "send a test alert")
    delivery = send_test(channel=channel, user=request.user)
    messages.success(request, f"Test message for “{channel.name}” queued.")
    query = urlencode({"channel": channel.pk})
    return HttpResponseRedirect(f"{reverse('alert-delivery-list')}?{query}#delivery-{delivery.pk}")


@require_GET
@vary_on_headers("HX-Request")
def delivery_list(request: HttpRequest) -> HttpResponse:
    """The log, newest first, filtered by state and channel; with `?delivery=` and htmx,
    one row, which stops the polling once it has been delivered or has failed."""
    _may_read(request, VIEW_DELIVERIES, "read the alert delivery log")
    form = DeliveryFilterForm(request.GET)
    valid = form.is_valid()
    page = selectors.deliveries(form.filters()) if valid else None
    if (
        valid
        and page is not None
        and getattr(request, "htmx", False)
        and form.filters().delivery_id
    ):
        if not page.rows:
            return HttpResponseStopPolling()
        delivery = page.rows[0]
        compact = request.GET.get("compact") == "1"
        response = render(request, "alerts/_delivery_row.html", {"d": delivery, "compact": compact})
        if delivery.state in FINISHED:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    params = request.GET.copy()
    params.pop("before", None)
    context = {
        "form": form,
        "page": page,
        "page_query": params.urlencode(),
        "is_first_page": not request.GET.get("before"),
    }
    return render(request, "alerts/delivery_list.html", context, status=200 if valid else 400)
