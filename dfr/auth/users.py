"""Accounts and sign-in sessions, kept in the service's database next to the audit log they feed.

A session token is 32 random bytes handed to the client once; the database keeps only its SHA-256, so
whoever reads the database (a backup, a support dump) cannot reuse a live session. Every sign-in, failed
sign-in, sign-out and account change is an audit record: who touched the controls is part of the record.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from dfr.auth.passwords import hash_password_async, verify_password_async
from dfr.auth.principal import Principal, Role
from dfr.store import Store
from dfr.store.auth_models import SessionRow, UserRow, UserSourceRow

__all__ = ["SOURCE_PATTERN", "USERNAME_PATTERN", "AccountError", "UserStore"]

USERNAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
SOURCE_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
"""The same as a report's ``source`` field (dfr.domain.incidents.Source)."""
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 256
# Verified when the account does not exist, so that a wrong username costs as long as a wrong password.
_DUMMY_HASH: Final = "scrypt$32768$8$3$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class AccountError(ValueError):
    """An account change was refused; the message says why (shown to admins and by the CLI)."""


def _now() -> datetime:
    return datetime.now(UTC)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_username(username: str) -> str:
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise AccountError(
            "username must be 1-64 characters: letters, digits and _ . @ -, starting with a letter or digit"
        )
    return username


def check_sources(role: Role, sources: Sequence[str]) -> tuple[str, ...]:
    """Sources are a feed account's binding; other roles have none (see dfr.api.sources)."""
    bad = [s for s in sources if not re.fullmatch(SOURCE_PATTERN, s)]
    if bad:
        raise AccountError(f"not a source name (letters, digits and _ . : -, up to 64): {bad[0]!r}")
    if sources and role is not Role.FEED:
        raise AccountError("only feed accounts are bound to sources")
    return tuple(sorted(set(sources)))


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters long")
    return password


class UserStore:
    """Users and sessions on an open `Store` (same engine, same audit log)."""

    def __init__(self, store: Store, *, session_ttl: timedelta = timedelta(hours=12)) -> None:
        self._store = store
        # One database, one pool: the store owns the engine. Writers begin IMMEDIATE so that SQLite queues
        # them instead of failing; readers stay DEFERRED so that sign-in checks go on when writes cannot.
        self._sessions = async_sessionmaker(
            store.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )
        self._reads = async_sessionmaker(store.engine, expire_on_commit=False)
        self._ttl = session_ttl

    async def add(
        self,
        username: str,
        password: str,
        role: Role | str,
        *,
        actor: str = "cli",
        sources: Sequence[str] = (),
    ) -> None:
        """Create an account; refuses an existing username (use `set_password` to change one).
        ``sources``: for a feed account, the incident sources it may report as."""
        check_username(username)
        check_password(password)
        role = Role(role)
        check_sources(role, sources)
        digest = await hash_password_async(password)
        await self.add_hashed(username, digest, role, actor=actor, sources=sources)

    async def add_hashed(
        self, username: str, password_hash: str, role: Role, *, actor: str, sources: Sequence[str] = ()
    ) -> None:
        """Create an account from an already computed hash (tests use cheap hash parameters)."""
        check_username(username)
        bound = check_sources(role, sources)
        now = _now()
        async with self._sessions() as s, s.begin():
            if await s.get(UserRow, username) is not None:
                raise AccountError(f"user {username!r} already exists")
            s.add(
                UserRow(
                    username=username,
                    password_hash=password_hash,
                    role=role.value,
                    disabled=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            await s.flush()  # the account row before the rows that refer to it
            s.add_all(UserSourceRow(username=username, source=src) for src in bound)
        details: dict[str, object] = {"role": role.value}
        if bound:
            details["sources"] = list(bound)
        await self._store.append_audit(actor, "user.added", "user", username, details)

    async def set_sources(self, username: str, sources: Sequence[str], *, actor: str = "cli") -> None:
        """Bind a feed account to exactly these sources (none: unbound, see dfr.api.sources)."""
        async with self._sessions() as s, s.begin():
            row = await s.get(UserRow, username)
            if row is None:
                raise AccountError(f"no user {username!r}")
            bound = check_sources(Role(row.role), sources)
            await s.execute(delete(UserSourceRow).where(UserSourceRow.username == username))
            s.add_all(UserSourceRow(username=username, source=src) for src in bound)
            row.updated_at = _now()
        await self._store.append_audit(actor, "user.sources_set", "user", username, {"sources": list(bound)})

    async def sources_of(self, username: str) -> frozenset[str]:
        """The sources this account is bound to (empty: none)."""
        async with self._reads() as s:
            rows = await s.scalars(select(UserSourceRow.source).where(UserSourceRow.username == username))
            return frozenset(rows.all())

    async def bound_sources(self) -> frozenset[str]:
        """Every source some account is bound to: those are reserved to their accounts."""
        async with self._reads() as s:
            return frozenset((await s.scalars(select(UserSourceRow.source).distinct())).all())

    async def source_binding(self, username: str, source: str) -> tuple[frozenset[str], bool]:
        """(the sources `username` is bound to, whether `source` is bound to another account), in one
        indexed read: it runs for every report an account submits."""
        async with self._reads() as s:
            rows = (
                await s.execute(
                    select(UserSourceRow.username, UserSourceRow.source).where(
                        (UserSourceRow.username == username) | (UserSourceRow.source == source)
                    )
                )
            ).all()
        mine = frozenset(src for user, src in rows if user == username)
        return mine, any(user != username for user, src in rows if src == source)

    async def set_password(self, username: str, password: str, *, actor: str = "cli") -> None:
        check_password(password)
        digest = await hash_password_async(password)
        async with self._sessions() as s, s.begin():
            row = await s.get(UserRow, username)
            if row is None:
                raise AccountError(f"no user {username!r}")
            row.password_hash = digest
            row.updated_at = _now()
            # a new password ends every session opened with the old one
            await s.execute(
                update(SessionRow)
                .where(SessionRow.username == username, SessionRow.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        await self._store.append_audit(actor, "user.password_set", "user", username, {})

    async def set_disabled(self, username: str, disabled: bool, *, actor: str = "cli") -> None:
        async with self._sessions() as s, s.begin():
            row = await s.get(UserRow, username)
            if row is None:
                raise AccountError(f"no user {username!r}")
            row.disabled = disabled
            row.updated_at = _now()
        await self._store.append_audit(
            actor, "user.disabled" if disabled else "user.enabled", "user", username, {}
        )

    async def get(self, username: str) -> tuple[Principal, bool] | None:
        """The account's principal and whether it is disabled, or None."""
        async with self._reads() as s:
            row = await s.get(UserRow, username)
        return None if row is None else (Principal(row.username, Role(row.role)), row.disabled)

    async def list(self) -> list[dict[str, object]]:
        async with self._reads() as s:
            rows = (await s.scalars(select(UserRow).order_by(UserRow.username))).all()
            bindings = (await s.execute(select(UserSourceRow.username, UserSourceRow.source))).all()
        sources: dict[str, list[str]] = {}
        for username, source in sorted(bindings):
            sources.setdefault(username, []).append(source)
        return [
            {
                "username": r.username,
                "role": r.role,
                "disabled": r.disabled,
                "created_at": r.created_at,
                "sources": sources.get(r.username, []),
            }
            for r in rows
        ]

    async def sign_in(self, username: str, password: str, *, source: str) -> tuple[str, Principal, datetime]:
        """Check the password and open a session: (token, principal, expires_at). Raises AccountError with
        one message for every failure, so a caller cannot tell a wrong username from a wrong password."""
        async with self._reads() as s:
            row = await s.get(UserRow, username) if re.fullmatch(USERNAME_PATTERN, username) else None
        ok = await verify_password_async(password[:MAX_PASSWORD], row.password_hash if row else _DUMMY_HASH)
        if row is None or not ok or row.disabled:
            await self._store.append_audit(
                username[:64] or "(empty)", "auth.sign_in_failed", "user", None, {"source": source}
            )
            raise AccountError("wrong username or password, or the account is disabled")
        token = secrets.token_urlsafe(32)
        now = _now()
        expires = now + self._ttl
        async with self._sessions() as s, s.begin():
            s.add(
                SessionRow(
                    token_sha256=token_digest(token),
                    username=row.username,
                    created_at=now,
                    expires_at=expires,
                    revoked_at=None,
                )
            )
        await self._store.append_audit(
            row.username, "auth.signed_in", "user", row.username, {"source": source, "role": row.role}
        )
        return token, Principal(row.username, Role(row.role)), expires

    async def principal(self, token: str) -> Principal | None:
        """The signed-in account for a bearer token, or None (unknown, expired, revoked, disabled)."""
        if not 20 <= len(token) <= 128:
            return None
        async with self._reads() as s:
            found = (
                await s.execute(
                    select(UserRow.username, UserRow.role, UserRow.disabled, SessionRow.expires_at)
                    .join(SessionRow, SessionRow.username == UserRow.username)
                    .where(SessionRow.token_sha256 == token_digest(token), SessionRow.revoked_at.is_(None))
                )
            ).first()
        if found is None or found.disabled or found.expires_at <= _now():
            return None
        return Principal(found.username, Role(found.role))

    async def sign_out(self, token: str, *, actor: str) -> bool:
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(SessionRow)
                .where(SessionRow.token_sha256 == token_digest(token), SessionRow.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        ended = bool(getattr(result, "rowcount", 0))
        if ended:
            await self._store.append_audit(actor, "auth.signed_out", "user", actor, {})
        return ended
