"""Builders and helpers the tests import (conftest files hold fixtures only)."""
