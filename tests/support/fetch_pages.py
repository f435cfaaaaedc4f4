"""Pages as one user sees them, from the database of DATABASE_URL, in a process of its own.

`python -m tests.support.fetch_pages USERNAME URL...` prints a JSON object:
each URL with its status code and body (Django's test client: middleware,
views and templates, without a socket). For tests that point the app at a
database other than the test database (an upgraded one, a restored one).
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    username, *urls = sys.argv[1:]
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    pages = {}
    for url in urls:
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        pages[url] = [response.status_code, body.decode()]
    print(json.dumps(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
