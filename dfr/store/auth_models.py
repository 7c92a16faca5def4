"""User and session tables, on the same declarative `Base` as the incident and mission tables.

- ``users``: one row per person or integration account; the password is stored only as a KDF hash
  (see `dfr.auth.passwords`), the role decides what the API lets the account do;
- ``sessions``: one row per sign-in. Only a SHA-256 of the bearer token is kept, so a copy of the
  database does not hand out live sessions; a session ends at ``expires_at`` or when revoked (sign-out);
- ``user_sources``: the incident sources a feed account may report as (``dfr user add --source``). A
  source bound to an account (or signed for by a webhook secret) is that account's alone.

Revision ``0003`` creates the first two, ``0005`` the third.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dfr.store.models import Base, UTCDateTime

__all__ = ["ROLES", "SessionRow", "UserRow", "UserSourceRow"]

ROLES = ("viewer", "pilot", "admin", "feed")


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ({})".format(", ".join(f"'{r}'" for r in ROLES)), name="role_values"),
    )

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index(None, "username"), Index(None, "expires_at"))

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), ForeignKey("users.username"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSourceRow(Base):
    __tablename__ = "user_sources"

    username: Mapped[str] = mapped_column(String(64), ForeignKey("users.username"), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
