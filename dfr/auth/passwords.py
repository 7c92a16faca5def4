"""Password hashing with scrypt (RFC 7914), from the standard library.

scrypt is memory-hard, so a stolen user table is expensive to attack on GPUs; it needs no extra
dependency. Parameters travel with each hash (``scrypt$n$r$p$salt$hash``), so they can be raised later
without invalidating stored passwords. Hashing takes tenths of a second on purpose: callers on the
event loop must run it in a thread (`hash_password_async`, `verify_password_async`).

Those threads are this module's own small pool, never asyncio's default executor: the default executor
also renders, encodes and records video (and anything else `asyncio.to_thread` runs), so a flood of
sign-ins queued there used to delay a mission's evidence recording by seconds. Here a flood can at most
keep `HASH_WORKERS` threads busy (scrypt releases the GIL: at most that many cores); how many sign-ins may
wait for them is bounded before they get here (`dfr.api.signin`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "HASH_THREAD_PREFIX",
    "HASH_WORKERS",
    "hash_password",
    "hash_password_async",
    "verify_password",
    "verify_password_async",
]

# One of OWASP's recommended scrypt settings (N=2^15, r=8, p=3: 32 MiB, ~0.4 s on a 2-core CI machine).
N, R, P = 2**15, 8, 3
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024

HASH_WORKERS = 2
"""Threads that hash passwords: at most this many cores go to sign-ins, whatever arrives."""
HASH_THREAD_PREFIX = "dfr-password"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's password-hashing pool (created on first use; its idle threads cost nothing)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix=HASH_THREAD_PREFIX)
        return _pool


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
    return await asyncio.get_running_loop().run_in_executor(_executor(), hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_executor(), verify_password, password, stored)
