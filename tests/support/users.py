"""The cast of test users: one builder and one password for every test.

Sign them in with `client.force_login(user)`, or through the login page. The
lockout backend counts every password check against a client address, so
`client.login(...)` needs one: `client.login(request=HttpRequest(), ...)`.
"""

from __future__ import annotations

from django.contrib.auth.models import User

PASSWORD = "pw-for-tests-only"


def make_user(name: str, *groups: str) -> User:
    """A user in the given support groups, who logs in with `PASSWORD`."""
    from dashboard.roles import ensure_groups

    known = ensure_groups()
    user = User.objects.create_user(name, password=PASSWORD)
    for group in groups:
        user.groups.add(known[group])
    return user
