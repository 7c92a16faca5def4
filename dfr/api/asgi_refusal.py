"""One way for ASGI middleware to answer a refusal before the app runs: a JSON body in dfr's shape.

Middleware that refuses a request (too large, wrong type, forged origin) has no FastAPI response
machinery, so it sends the two ASGI messages itself; this keeps them the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import Send


async def send_refusal(
    send: Send, status: int, problem: Mapping[str, object], *, close: bool = False
) -> None:
    """Answer `status` with ``{"detail": problem}``; `close` asks the client to drop the connection
    (used when the request body was not read, so the connection cannot carry another request)."""
    body = json.dumps({"detail": dict(problem)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
