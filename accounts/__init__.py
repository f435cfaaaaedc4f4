"""Signing in: login protection, sessions that end, password reset, single sign-on."""
