"""ASGI guards of the server: access token, allowed Host names and request-body limits.

The token is accepted from ``Authorization: Bearer TOKEN``, the ``perfcast_token`` cookie,
or a ``?token=`` query parameter (which also sets the cookie, so a browser opened on
``/?token=...`` keeps working); it is compared in constant time. The Host check stops DNS
rebinding against a loopback server. Bodies above the limit get 413 before they are read.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from ipaddress import ip_address
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "perfcast_token"
OPEN_PATHS = frozenset({"/api/health"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
TOKEN_ENV = "PERFCAST_TOKEN"
MIN_TOKEN_CHARS = 16
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::[0-9]{1,5})?")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_token(host: str, token: str | None) -> str | None:
    """The token a server bound to ``host`` requires: ``token``, else ``$PERFCAST_TOKEN``.

    ValueError when a non-loopback host has none (anyone on the network could use the
    server) or when the token is shorter than MIN_TOKEN_CHARS.
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None:
        raise ValueError(f"--host {host} accepts connections from other machines; give "
                         f"--token TOKEN (or set ${TOKEN_ENV}) so only holders of the token "
                         "can use the server, or bind to 127.0.0.1")
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"--token must be at least {MIN_TOKEN_CHARS} characters (e.g. "
                         "python -c 'import secrets; print(secrets.token_urlsafe())')")
    return token


def display_url(host: str, port: int, path: str) -> str:
    """``http://host:port/path``, IPv6 addresses in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}{path}"


async def send_error(send: Send, status: int, error: str, field: str | None, reason: str,
                     headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer with the API's JSON error body."""
    body = json.dumps({"error": error, "field": field, "reason": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class TokenGuard:
    """Refuse every request without the token (401), except :data:`OPEN_PATHS`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        auth = _header(scope, b"authorization") or ""
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        cookie = SimpleCookie(_header(scope, b"cookie") or "").get(COOKIE)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])
        if self._matches(bearer) or self._matches(cookie.value if cookie else None):
            await self.app(scope, receive, send)
        elif self._matches(query[0]):
            await self.app(scope, receive, self._setting_cookie(send))
        else:
            await send_error(send, 401, "unauthorized", "token",
                             "this server needs its access token: send 'Authorization: "
                             "Bearer TOKEN' (or open the dashboard once with ?token=TOKEN)",
                             [(b"www-authenticate", b"Bearer")])

    def _setting_cookie(self, send: Send) -> Send:
        cookie = f"{COOKIE}={self._token.decode()}; HttpOnly; SameSite=Strict; Path=/"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", cookie.encode())]
            await send(message)

        return wrapped


class HostGuard:
    """Refuse requests whose Host header is not one of ``hosts`` (400)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self._hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = (_header(scope, b"host") or "").lower()
            match = _HOST.fullmatch(host)  # name[:port] only: no userinfo, path or spaces
            if match is None or match.group(1) not in self._hosts:
                await send_error(send, 400, "bad_host", "host",
                                 f"Host {host[:100]!r} is not served here (allowed: "
                                 f"{', '.join(sorted(self._hosts))})")
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for bodies over ``limit_for(path)`` bytes, judged by Content-Length or, for
    chunked bodies, by counting while buffering (never more than the limit in memory)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self._limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await send_error(send, 400, "bad_request", "content-length",
                                 f"Content-Length {length[:40]!r} is not a byte count")
            elif int(length) > limit:
                await self._too_large(send, limit)
            else:
                await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._too_large(send, limit)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        await send_error(send, 413, "too_large", "body",
                         f"request body is larger than this endpoint's limit of {limit:,} "
                         "bytes")
