from django.urls import path

from . import channel_views, views

urlpatterns = [
    path("", views.alert_list, name="alert-list"),
    path("rules/new/", views.rule_new, name="alert-rule-new"),
    path("rules/<int:pk>/", views.rule_detail, name="alert-rule-detail"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="alert-rule-edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="alert-rule-delete"),
    path("rules/<int:pk>/toggle/", views.rule_toggle, name="alert-rule-toggle"),
    path("rules/<int:pk>/snooze/", views.rule_snooze, name="alert-rule-snooze"),
    path("mutes/new/", views.mute_new, name="alert-mute-new"),
    path("mutes/<int:pk>/delete/", views.mute_delete, name="alert-mute-delete"),
    path("channels/", channel_views.channel_list, name="alert-channel-list"),
    path("channels/new/", channel_views.channel_new, name="alert-channel-new"),
    path("channels/<int:pk>/", channel_views.channel_edit, name="alert-channel-edit"),
    path("channels/<int:pk>/delete/", channel_views.channel_delete, name="alert-channel-delete"),
    path("channels/<int:pk>/test/", channel_views.channel_test, name="alert-channel-test"),
    path("deliveries/", channel_views.delivery_list, name="alert-delivery-list"),
]
