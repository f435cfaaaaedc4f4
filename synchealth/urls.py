from django.contrib import admin
from django.urls import include, path

# A refusal says which role is missing and whom to ask, in the site's layout.
handler403 = "dashboard.access.permission_denied"

urlpatterns = [
    # Every sandbox endpoint answers 404 unless SANDBOX_ENABLED is on.
    path("sandbox/", include("sandbox.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("dashboard.urls")),
]
