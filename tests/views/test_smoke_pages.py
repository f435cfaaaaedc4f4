"""Every page renders for a viewer."""

from django.urls import reverse


def test_pages_render(viewer_client, estate):
    for url in [
        reverse("summary"),
        reverse("sync-history"),
        reverse("sync-history") + "?range=all&sort=duration&dir=asc",
        reverse("sync-detail", args=[estate["push_error"].sync_id]),
        reverse("sync-detail", args=[estate["push_error"].sync_id]) + "?tab=items",
        reverse("sync-detail", args=[estate["push_error"].sync_id]) + "?tab=config",
        reverse("company-detail", args=[estate["xero"].company_id]),
        reverse("preferences"),
    ]:
        response = viewer_client.get(url)
        assert response.status_code == 200, url
