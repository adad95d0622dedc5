"""
Drive the project's real ASGI application in-process, one ASGI message at a time.

Like asgiref's ApplicationCommunicator, plus a bounded ``send`` buffer: with
``buffer=1`` the application's ``send`` blocks once one message is unread, as
a real server does for a client that stops reading.
"""

import asyncio

from notifications.asgi import get_asgi_application
from notifications.testing import http_scope, parse_stream

application = get_asgi_application()


def event_ids(frames: list[bytes]) -> list[str]:
    """Return the ids of the events in ``frames``, in order."""
    return [event.id for event in parse_stream(b"".join(frames)) if event.id is not None]


class AsgiRequest:
    """One HTTP request to ``application``; read its response message by message."""

    def __init__(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict | None = None,
        body: bytes = b"",
        buffer: int = 0,
        root_path: str = "",
    ):
        path, _, query = path.partition("?")
        header_list = [
            (name.lower().encode(), value.encode("latin-1")) for name, value in (headers or {}).items()
        ]
        self.scope = http_scope(
            path, method=method, query_string=query.encode(), headers=header_list, root_path=root_path
        )
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._outbox: asyncio.Queue = asyncio.Queue(maxsize=buffer)
        self._inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.task = asyncio.create_task(application(self.scope, self._inbox.get, self._outbox.put))
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.ended = False
        self._pending = b""
        self._frames: list[bytes] = []

    async def receive(self, timeout: float = 2) -> dict:
        """Return the next message the application sends."""
        return await asyncio.wait_for(self._outbox.get(), timeout)

    async def start(self, timeout: float = 2) -> "AsgiRequest":
        """Read the response start: status and headers."""
        message = await self.receive(timeout)
        assert message["type"] == "http.response.start", message
        self.status = message["status"]
        self.headers = {name.decode().lower(): value.decode("latin-1") for name, value in message["headers"]}
        return self

    async def body(self, timeout: float = 2) -> bytes:
        """Return the next body message's bytes; note whether the response ended."""
        message = await self.receive(timeout)
        assert message["type"] == "http.response.body", message
        self.ended = not message.get("more_body", False)
        return message.get("body", b"")

    async def frames(self, count: int, timeout: float = 2) -> list[bytes]:
        """Return the next ``count`` SSE frames, however the body was chunked."""
        while len(self._frames) < count:
            assert not self.ended, f"response ended after {self._frames}"
            self._pending += await self.body(timeout)
            *complete, self._pending = self._pending.split(b"\n\n")
            self._frames += [frame + b"\n\n" for frame in complete]
        frames, self._frames = self._frames[:count], self._frames[count:]
        return frames

    async def rest(self, timeout: float = 2) -> bytes:
        """Return the remaining body up to the end of the response."""
        chunks = []
        while not self.ended:
            chunks.append(await self.body(timeout))
        return b"".join(chunks)

    async def disconnect(self, timeout: float = 5) -> None:
        """Tell the application the client left, and wait for it to finish."""
        if not self.task.done():
            self._inbox.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(self.task, timeout)
