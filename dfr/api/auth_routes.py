"""Sign-in, sign-out, "who am I", and account administration (admins only).

Sign-in answers the token in the body (for integrations, which send it as a bearer token) and sets it as
the ``dfr_session`` cookie (for the panel). Failed sign-ins get one message whatever was wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dfr.api.clients import client_scheme
from dfr.api.routes import _problem
from dfr.api.signin import admit_sign_in
from dfr.auth import COOKIE, AdminDep, Principal, Role, require_role
from dfr.auth.deps import bearer_token, user_store
from dfr.auth.users import MAX_PASSWORD, SOURCE_PATTERN, USERNAME_PATTERN, AccountError, UserStore
from dfr.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["auth"])

AnyUser = Annotated[Principal, Depends(require_role(*Role))]
Users = Annotated[UserStore, Depends(user_store)]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class SignedIn(BaseModel):
    token: str
    username: str
    role: Role
    expires_at: datetime


class Me(BaseModel):
    username: str
    role: Role


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=MAX_PASSWORD)
    role: Role
    sources: list[Annotated[str, Field(pattern=SOURCE_PATTERN)]] = Field(
        default_factory=list,
        max_length=32,
        description="Feed accounts: the incident sources it may report as (then no one else may).",
    )


_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "Wrong credentials"}}


@router.post("/auth/login", response_model=SignedIn, summary="Sign in", responses=_AUTH_ERRORS)
async def login(body: Credentials, request: Request, response: Response, users: Users) -> SignedIn:
    settings = getattr(request.app.state, "settings", None) or Settings()
    with admit_sign_in(request, settings, body.username):  # 429/503 before any hash is spent
        client = request.state.client
        try:
            token, who, expires = await users.sign_in(body.username, body.password, source=f"http:{client}")
        except AccountError as e:
            raise HTTPException(401, detail=_problem("unauthenticated", str(e))) from None
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=client_scheme(request) == "https",
        expires=expires,
        path="/",
    )
    return SignedIn(token=token, username=who.username, role=who.role, expires_at=expires)


@router.post("/auth/logout", status_code=204, summary="Sign out (ends this session)")
async def logout(request: Request, who: AnyUser, users: Users) -> Response:
    token = bearer_token(request)
    if token:
        await users.sign_out(token, actor=who.username)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/auth/me", response_model=Me, summary="The signed-in account")
async def me(who: AnyUser) -> Me:
    return Me(username=who.username, role=who.role)


@router.get("/users", summary="Accounts (admins only)")
async def list_users(_: AdminDep, users: Users) -> dict[str, Any]:
    return {"users": await users.list()}


@router.post("/users", status_code=201, response_model=Me, summary="Create an account (admins only)")
async def add_user(body: NewUser, who: AdminDep, users: Users) -> Me:
    try:
        await users.add(body.username, body.password, body.role, actor=who.username, sources=body.sources)
    except AccountError as e:
        raise HTTPException(409, detail=_problem("conflict", str(e), "username")) from None
    return Me(username=body.username, role=body.role)
