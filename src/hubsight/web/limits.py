"""The largest request body the API reads: anything bigger is a 413, never memory exhaustion."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hubsight.errors import RequestTooLarge
from hubsight.web.responses import error_response

# Sigma rule texts (up to 1 MB) are the largest bodies the console sends.
MAX_BODY_BYTES = 2 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"the request body is larger than {limit // 1024} KiB",
        hint="send less at once (split a large request into several)",
    )


class BodyLimit:
    """Refuses a body over ``limit`` bytes: by its Content-Length, or while it is read."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await error_response(_too_large(self.limit))(scope, receive, send)
            return
        read = 0
        refused = error_response(_too_large(self.limit))
        over = False

        async def limited() -> Message:
            nonlocal read, over
            message = await receive()
            read += len(message.get("body", b""))
            if read > self.limit:
                over = True
                raise _too_large(self.limit)
            return message

        async def answer(message: Message) -> None:
            # Whatever the app makes of the broken read (FastAPI: a 400), the answer is a 413.
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await send({"type": message["type"], "status": 413, "headers": refused.raw_headers})
                await send({"type": "http.response.body", "body": refused.body})

        await self.app(scope, limited, answer)
