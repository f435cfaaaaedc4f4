from django.contrib import admin
from django.urls import include, path

from dashboard import health

# A refusal says which role is missing and whom to ask, in the site's layout.
handler403 = "dashboard.access.permission_denied"

urlpatterns = [
    # For load balancers, monitors and Prometheus: public, no session (dashboard/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    # Every sandbox endpoint answers 404 unless SANDBOX_ENABLED is on.
    path("sandbox/", include("sandbox.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("alerts/", include("alerts.urls")),
    path("", include("dashboard.urls")),
]
