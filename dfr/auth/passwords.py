"""Password hashing with scrypt (RFC 7914), from the standard library.

scrypt is memory-hard, so a stolen user table is expensive to attack on GPUs; it needs no extra
dependency. Parameters travel with each hash (``scrypt$n$r$p$salt$hash``), so they can be raised later
without invalidating stored passwords. Hashing takes tens of milliseconds on purpose: callers on the
event loop must run it in a thread (`hash_password_async`, `verify_password_async`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "hash_password_async", "verify_password", "verify_password_async"]

# One of OWASP's recommended scrypt settings (N=2^15, r=8, p=3: 32 MiB, ~0.4 s on a 2-core CI machine).
N, R, P = 2**15, 8, 3
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches `stored`; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)
