"""FastAPI dependencies that say who is calling and refuse what their role may not do.

Every route declares its role with one of `ViewerDep`, `PilotDep`, `AdminDep`, `FeedDep`, so the check
happens on the server for every call, whatever the page shows. Credentials are a bearer token
(``Authorization: Bearer …``, for integrations) or the ``dfr_session`` cookie the sign-in sets (for the
panel: HttpOnly, so page scripts never see it, and SameSite=Strict, so other sites cannot ride on it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from dfr.auth.principal import COMMANDERS, READERS, Principal, Role
from dfr.auth.users import UserStore

__all__ = [
    "COOKIE",
    "AdminDep",
    "FeedDep",
    "PilotDep",
    "ViewerDep",
    "bearer_token",
    "require_role",
    "user_store",
]

COOKIE = "dfr_session"


def _problem(code: str, reason: str) -> dict[str, Any]:
    """The API's refusal body (see dfr.api.schemas.Problem)."""
    return {"code": code, "reason": reason, "field": None, "position": None, "errors": []}


def user_store(request: Request) -> UserStore:
    users: UserStore | None = getattr(request.app.state, "users", None)
    if users is None:
        store = getattr(request.app.state, "store", None)
        if store is None:
            raise HTTPException(503, detail=_problem("not_ready", "the store is not open"))
        settings = getattr(request.app.state, "settings", None)
        ttl = timedelta(seconds=settings.session_ttl_s) if settings is not None else timedelta(hours=12)
        users = UserStore(store, session_ttl=ttl)
        request.app.state.users = users
    return users


def bearer_token(request: Request) -> str | None:
    """The caller's token from the Authorization header, else from the session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.cookies.get(COOKIE) or None


def require_role(*allowed: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency returning the caller if signed in with one of `allowed` roles; 401 / 403 otherwise."""
    names = ", ".join(r.value for r in allowed)

    async def dependency(request: Request) -> Principal:
        users = user_store(request)  # 503 before start-up, whoever asks
        token = bearer_token(request)
        principal = await users.principal(token) if token else None
        if principal is None:
            raise HTTPException(
                401,
                detail=_problem("unauthenticated", "sign in first (session missing, expired or ended)"),
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in allowed:
            raise HTTPException(
                403,
                detail=_problem(
                    "forbidden", f"{principal.username} is a {principal.role.value}; this needs: {names}"
                ),
            )
        request.state.principal = principal
        return principal

    return dependency


ViewerDep = Annotated[Principal, Depends(require_role(*READERS))]
PilotDep = Annotated[Principal, Depends(require_role(*COMMANDERS))]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
FeedDep = Annotated[Principal, Depends(require_role(Role.FEED, *COMMANDERS))]
