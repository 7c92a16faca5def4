"""A cap on every request body, applied before any route reads it (ASGI middleware).

Routes that parse JSON read the whole body into memory first, and before this a 200 MiB body sent to the
sign-in route (no session needed) was read whole. Here a body whose ``Content-Length`` is over the cap is
refused with 413 before a byte of it is read, and a body without a length (chunked) is counted as it is
read and refused as soon as it passes the cap: the rest is never read and the connection is closed.
Routes may have smaller limits of their own (reports: ``max_payload_bytes``; SDP offers).
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dfr.api.asgi_refusal import send_refusal

__all__ = ["BodyLimitMiddleware", "BodyTooLarge"]


def _problem(reason: str) -> dict[str, Any]:
    return {"code": "payload_too_large", "reason": reason, "field": None, "position": None, "errors": []}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a chunked body passes the cap. An HTTPException, so that a route in
    the middle of reading (FastAPI's JSON parsing included) answers it as a 413, not as a broken body."""

    def __init__(self, cap: int) -> None:
        self.reason = f"the body is larger than the {cap} bytes allowed"
        super().__init__(413, detail=_problem(self.reason))


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.max_bytes
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            reason = (
                f"the body is {int(declared)} bytes, more than the {cap} bytes allowed"
                if declared.isdigit()
                else "the Content-Length header is not a number"
            )
            await _refuse(send, 413 if declared.isdigit() else 400, reason)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(cap)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as e:  # raised where no route caught it (outside FastAPI's handlers)
            if not started:
                await _refuse(send, 413, e.reason)


async def _refuse(send: Send, status: int, reason: str) -> None:
    problem = _problem(reason) | ({} if status == 413 else {"code": "bad_request"})
    await send_refusal(send, status, problem, close=True)
