"""
The hand-made FastAPI SSE service this project replaces, reproduced on purpose.

It is the common pattern, problems included, so the benchmark and the
deployment check can show them side by side with notifications:

- one ``asyncio.Queue`` per open stream in a process-global dict of sets;
- a ``while True`` generator with a 10 s heartbeat *event* and a
  ``sleep(0.1)`` after every message, which caps a stream at ~10 events/s;
- no event ids or replay: a reconnecting client misses what was published;
- a shutdown hook that would end the streams, but uvicorn runs it only after
  every connection has closed: without ``--timeout-graceful-shutdown`` the
  server waits for streams that never end, and with it the streams are
  cancelled (cut, no farewell) before the hook runs.

Run: ``uvicorn --app-dir examples fastapi_sse.app:app``.
"""

import asyncio
import itertools
import json
import os
from collections import defaultdict
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

# The same variable as notifications, so one harness drives every server.
PUBLISH_TOKEN = os.environ.get("NOTIFICATIONS_PUBLISH_TOKEN", "dev-token")
HEARTBEAT_SECONDS = 10

subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
event_ids = itertools.count(1)


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    # Meant to end every stream with a farewell; uvicorn runs lifespan
    # shutdown only after all connections are closed, i.e. too late.
    for queues in subscribers.values():
        for queue in queues:
            queue.put_nowait(None)


app = FastAPI(lifespan=lifespan)


async def event_generator(request: Request, event_type: str):
    queue: asyncio.Queue = asyncio.Queue()
    subscribers[event_type].add(queue)
    try:
        while True:
            if await request.is_disconnected():
                break
            try:
                message = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
            except TimeoutError:
                yield "event: heartbeat\ndata: {}\n\n"
                continue
            if message is None:
                yield 'event: server_shutdown\ndata: {"reconnect_after_ms": 2000}\n\n'
                break
            event_id, data = message
            yield f"event: {event_type}\nid: {event_id}\ndata: {json.dumps(data)}\n\n"
            await asyncio.sleep(0.1)
    finally:
        subscribers[event_type].discard(queue)


@app.get("/sse/subscribe/{event_type}")
@app.get("/sse/subscribe/{event_type}/")
async def subscribe(event_type: str, request: Request):
    return StreamingResponse(
        event_generator(request, event_type),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@app.post("/sse/publish/{event_type}/", status_code=202)
async def publish(
    event_type: str, data: Annotated[dict, Body()], authorization: Annotated[str, Header()] = ""
):
    if authorization != f"Bearer {PUBLISH_TOKEN}":
        raise HTTPException(status_code=403, detail="Invalid token")
    event_id = str(next(event_ids))
    for queue in subscribers[event_type]:
        queue.put_nowait((event_id, data))
    return {"id": event_id}
