"""A small OpenID provider for tests, on 127.0.0.1 in a thread.

It serves the authorisation code flow as a real provider does for someone
already signed in there: the authorisation endpoint sends the browser
straight back with a code; the token endpoint checks the client's secret,
the redirect URI and the PKCE verifier, and answers with an RS256-signed ID
token; the JWKS endpoint publishes the public key; userinfo answers for the
access token. The test says who signs in next (`provider.person = …`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class Person:
    """Someone with an account at the provider."""

    sub: str
    preferred_username: str
    email: str
    groups: list[str] = field(default_factory=list)
    given_name: str = ""
    family_name: str = ""

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "preferred_username": self.preferred_username,
            "email": self.email,
            "groups": list(self.groups),
            "given_name": self.given_name,
            "family_name": self.family_name,
        }


@dataclass
class _Grant:
    person: Person
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None


class OpenIdProvider:
    """Start with `with OpenIdProvider(client_id, secret) as provider:`."""

    KEY_ID = "test-signing-key"

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.person: Person | None = None
        # Claims written over the ID token's own, to play a provider gone wrong.
        self.id_token_overrides: dict[str, Any] = {}
        # Claims the next ID tokens leave out.
        self.id_token_drop: set[str] = set()
        self.token_requests = 0
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._access_tokens: dict[str, Person] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OpenIdProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
        }

    # --- what each endpoint answers: (status, headers, JSON body) ---

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            **self.endpoints,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        key = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.KEY_ID, "alg": "RS256", "use": "sig"}]}

    def authorize(self, query: dict[str, str]) -> str:
        """The redirect back to the client: with a code, or with an error."""
        redirect_uri = query.get("redirect_uri", "")
        back = {"state": query.get("state", "")}
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            back["error"] = "unauthorized_client"
        elif self.person is None:
            back["error"] = "access_denied"
        else:
            if query.get("code_challenge_method", "S256") != "S256":
                raise ValueError("this provider speaks S256 only")
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._grants[code] = _Grant(
                    person=self.person,
                    client_id=self.client_id,
                    redirect_uri=redirect_uri,
                    nonce=query.get("nonce"),
                    code_challenge=query.get("code_challenge"),
                )
            back["code"] = code
        return f"{redirect_uri}?{urlencode(back)}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        if grant.code_challenge is not None:
            digest = hashlib.sha256(form.get("code_verifier", "").encode("ascii")).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE"}
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[access_token] = grant.person
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant.person, nonce=grant.nonce),
        }

    def id_token(self, person: Person, *, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": person.sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "email": person.email,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.id_token_overrides)
        for name in self.id_token_drop:
            claims.pop(name, None)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.KEY_ID})

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            person = self._access_tokens.get(authorization.removeprefix("Bearer "))
        if person is None:
            return 401, {"error": "invalid_token"}
        return 200, person.claims()


def _handler_for(provider: OpenIdProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", provider.authorize(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif url.path == "/userinfo":
                self._json(*provider.userinfo(self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = {key: values[0] for key, values in parse_qs(body).items()}
            if urlsplit(self.path).path == "/token":
                self._json(*provider.token(form, self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not_found"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests say what went wrong."""

    return Handler


def sign_in(client: Any, provider: OpenIdProvider, person: Person, *, next_url: str = "") -> Any:
    """The browser's round trip: our start URL, the provider, our callback."""
    provider.person = person
    start = client.get("/accounts/sso/start/", {"next": next_url} if next_url else {})
    assert start.status_code == 302
    assert start["Location"].startswith(provider.endpoints["authorization_endpoint"])
    at_provider = httpx.get(start["Location"], follow_redirects=False, trust_env=False)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["location"])
    assert back.netloc == "testserver"
    return client.get(f"{back.path}?{back.query}")
