from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("dashboard.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.insert(0, path("sandbox/", include("sandbox.urls")))
    # Codat's own API has no trailing-slash variant; neither does the sandbox,
    # but `/sandbox` alone should not fall through to the dashboard.
    urlpatterns.insert(0, path("sandbox", RedirectView.as_view(url="/sandbox/companies")))
