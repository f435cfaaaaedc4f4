from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # Every sandbox endpoint answers 404 unless SANDBOX_ENABLED is on.
    path("sandbox/", include("sandbox.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("dashboard.urls")),
]
