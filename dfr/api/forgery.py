"""Cross-site request forgery and body types: checked for every state-changing request (ASGI middleware).

The panel signs in with an HttpOnly cookie, and a browser sends that cookie with requests other pages make.
SameSite=Strict stops other *sites*, but not another origin of the same site (another host of the agency's
domain, or another port on the same machine), and an HTML form or a "simple" fetch needs no permission to
POST. Two rules close that:

- **Body types**: a POST, PUT, PATCH or DELETE that has a body must say it is ``application/json`` (the WHEP
  offer route: ``application/sdp``), else 415. A form cannot send those types, and a script on another
  origin can only do so after a CORS preflight, which dfr never grants.
- **Origin**: such a request that is authenticated by the cookie (no ``Authorization`` header) is refused
  (403) when the browser says it comes from elsewhere: ``Sec-Fetch-Site`` other than ``same-origin`` or
  ``none``, or an ``Origin`` whose host is not this service's (nor in ``trusted_origins``). Requests with a
  bearer token are not subject to it: a token is never sent by a browser on its own.

Requests with neither header (scripts, curl) carry no browser's ambient authority and pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from dfr.api.asgi_refusal import send_refusal
from dfr.auth.deps import COOKIE

__all__ = ["STATE_CHANGING", "ForgeryMiddleware"]

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
SDP = "application/sdp"
_SDP_ROUTES = re.compile(r"^/api/v1/drones/[^/]+/whep$")
_SAME = frozenset({"same-origin", "none"})


def _problem(code: str, reason: str) -> dict[str, object]:
    return {"code": code, "reason": reason, "field": None, "position": None, "errors": []}


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


class ForgeryMiddleware:
    def __init__(self, app: ASGIApp, trusted_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted_hosts = frozenset(urlsplit(o).netloc.lower() for o in trusted_origins if o)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._body_type(scope["path"], headers) or self._origin(headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, problem = refusal
        await send_refusal(send, status, problem)

    @staticmethod
    def _body_type(path: str, headers: dict[str, str]) -> tuple[int, dict[str, object]] | None:
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        declared = headers.get("content-type")
        if declared is None and not has_body:
            return None  # e.g. approve without a body, sign-out, DELETE
        wanted = SDP if _SDP_ROUTES.match(path) else JSON
        media = _media_type(declared or "")
        if media == wanted or (wanted == JSON and media.endswith("+json")):
            return None
        said = f"Content-Type {media}" if media else "no Content-Type"
        return 415, _problem("unsupported_media_type", f"the body must be {wanted}, not {said}")

    def _origin(self, headers: dict[str, str]) -> tuple[int, dict[str, object]] | None:
        if "authorization" in headers or f"{COOKIE}=" not in headers.get("cookie", ""):
            return None  # not riding on the browser's cookie
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in _SAME:
            return 403, _problem(
                "cross_origin", f"a signed-in page of another origin may not do this (Sec-Fetch-Site: {site})"
            )
        origin = headers.get("origin")
        if origin is None:
            return None
        host = urlsplit(origin).netloc.lower() if origin != "null" else ""
        if host and (host == headers.get("host", "").lower() or host in self.trusted_hosts):
            return None
        return 403, _problem(
            "cross_origin", f"requests from {origin} may not use this service's sign-in cookie"
        )
