"""
A baseline SSE service built the idiomatic sse-starlette way, with the same
endpoints as notifications so one benchmark drives both.

- one ``asyncio.Queue`` per open stream, fed by the publish endpoint;
- ``EventSourceResponse`` with its defaults (15 s ping comments);
- event ids and a bounded in-memory history, so ``Last-Event-ID`` replays
  what a reconnecting client missed;
- shutdown as the library does it by default: every stream is cancelled
  (cut). Setting ``SSE_STARLETTE_GRACE_SECONDS`` opts in to its cooperative
  shutdown (``shutdown_event`` + ``shutdown_grace_period``): the streams send
  a farewell event and end. Keep it below uvicorn's
  ``--timeout-graceful-shutdown``.

Run: ``uvicorn --app-dir examples sse_starlette_app.app:app``.
"""

import asyncio
import itertools
import json
import os
from collections import defaultdict, deque
from typing import Annotated

import anyio
from fastapi import Body, FastAPI, Header, HTTPException
from sse_starlette import EventSourceResponse, ServerSentEvent

# The same variable as notifications, so one harness drives every server.
PUBLISH_TOKEN = os.environ.get("NOTIFICATIONS_PUBLISH_TOKEN", "dev-token")
GRACE_SECONDS = float(os.environ.get("SSE_STARLETTE_GRACE_SECONDS", "0"))
HISTORY_SIZE = 1000
FAREWELL = ServerSentEvent(data=json.dumps({"reconnect_after_ms": 2000}), event="server_shutdown", retry=2000)

app = FastAPI()
subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
history: deque[tuple[int, str, dict]] = deque(maxlen=HISTORY_SIZE)
event_ids = itertools.count(1)
# One event shared by every response: sse-starlette sets it on shutdown, and
# one watcher then wakes every stream instead of a waiter per stream.
shutdown_event = anyio.Event()
shutdown_watcher: asyncio.Task | None = None


async def wake_streams_on_shutdown() -> None:
    await shutdown_event.wait()
    for queues in subscribers.values():
        for queue in queues:
            queue.put_nowait(None)


def missed_events(event_type: str, last_event_id: str | None) -> list[ServerSentEvent]:
    if last_event_id is None or not last_event_id.isdigit():
        return []
    after = int(last_event_id)
    return [
        ServerSentEvent(data=json.dumps(data), event=kind, id=str(event_id))
        for event_id, kind, data in history
        if kind == event_type and event_id > after
    ]


async def event_generator(event_type: str, last_event_id: str | None):
    queue: asyncio.Queue = asyncio.Queue()
    subscribers[event_type].add(queue)
    try:
        for event in missed_events(event_type, last_event_id):
            yield event
        while True:
            message = await queue.get()
            if message is None:
                yield FAREWELL
                return
            event_id, data = message
            yield ServerSentEvent(data=json.dumps(data), event=event_type, id=event_id)
    finally:
        subscribers[event_type].discard(queue)


@app.get("/sse/subscribe/{event_type}")
@app.get("/sse/subscribe/{event_type}/")
async def subscribe(event_type: str, last_event_id: Annotated[str | None, Header()] = None):
    global shutdown_watcher
    if not GRACE_SECONDS:
        return EventSourceResponse(event_generator(event_type, last_event_id))
    if shutdown_watcher is None:
        shutdown_watcher = asyncio.create_task(wake_streams_on_shutdown())
    return EventSourceResponse(
        event_generator(event_type, last_event_id),
        shutdown_event=shutdown_event,
        shutdown_grace_period=GRACE_SECONDS,
    )


@app.post("/sse/publish/{event_type}/", status_code=202)
async def publish(
    event_type: str, data: Annotated[dict, Body()], authorization: Annotated[str, Header()] = ""
):
    if authorization != f"Bearer {PUBLISH_TOKEN}":
        raise HTTPException(status_code=403, detail="Invalid token")
    event_id = next(event_ids)
    history.append((event_id, event_type, data))
    for queue in subscribers[event_type]:
        queue.put_nowait((str(event_id), data))
    return {"id": str(event_id)}
