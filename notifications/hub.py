"""
Per-process fan-out from the channel layer to the streams of this process.

Every open stream is a Listener in the hub of its event loop. The hub holds
one channel-layer channel that joins the group of each topic its listeners
want, once, however many listeners there are; it encodes each
event once and appends the bytes to every interested listener's queue.
Layer traffic therefore grows with processes, not with open streams.
"""

import asyncio
import logging
import weakref
from collections import Counter, deque

from channels.layers import get_channel_layer

from . import process
from .conf import setting
from .encoding import Event, encode_event
from .history import EventId, get_history
from .topics import group_name

logger = logging.getLogger(__name__)

# Why a listener was closed by the hub.
SLOW = "slow"
SHUTDOWN = "shutdown"


class Listener:
    """The inbox of one open stream: encoded frames waiting to be sent."""

    __slots__ = ("topics", "limit", "frames", "wakeup", "close_reason", "skip_up_to")

    def __init__(self, topics: list[str], limit: int):
        self.topics = topics
        self.limit = limit
        self.frames: deque[tuple[int, bytes]] = deque()
        self.wakeup = asyncio.Event()
        self.close_reason: str | None = None
        # Frames at or below this seq were already sent by the replay.
        self.skip_up_to = 0

    def deliver(self, seq: int, frame: bytes) -> bool:
        """Queue ``frame``; return False if the listener is closed or overflowed."""
        if self.close_reason is not None:
            return False
        if len(self.frames) >= self.limit:
            # Never drop silently and never grow without bound: close the
            # stream; the client reconnects and catches up from history.
            self.close(SLOW)
            return False
        self.frames.append((seq, frame))
        self.wakeup.set()
        return True

    def take(self) -> bytes:
        """Return every queued frame not already replayed, as one chunk."""
        frames, self.frames = self.frames, deque()
        self.wakeup.clear()
        skip = self.skip_up_to
        return b"".join(frame for seq, frame in frames if seq > skip)

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self.wakeup.set()


class Hub:
    """Route events from the channel layer to this event loop's listeners."""

    def __init__(self, layer_alias: str):
        self.layer_alias = layer_alias
        self.layer = get_channel_layer(layer_alias)
        self.listeners: dict[str, set[Listener]] = {}
        self.count = 0
        self.channel: str | None = None
        self.joined: set[str] = set()
        # Highest seq fanned out (or known at join time) per topic, so a
        # drain can catch up on events still in flight.
        self.positions: dict[str, int] = {}
        self.stats: Counter[str] = Counter()
        self._membership = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._receiver: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None
        self._empty = asyncio.Event()
        self._empty.set()

    async def add(self, listener: Listener) -> None:
        """Register ``listener`` and wait until its groups are joined."""
        for topic in listener.topics:
            self.listeners.setdefault(topic, set()).add(listener)
        self.count += 1
        self._empty.clear()
        if not self.joined.issuperset(listener.topics):
            await self._sync_groups()

    def remove(self, listener: Listener) -> None:
        """Forget ``listener`` now; leave groups nobody here listens to."""
        emptied = False
        for topic in listener.topics:
            listeners = self.listeners.get(topic)
            if listeners is None or listener not in listeners:
                continue
            listeners.discard(listener)
            if not listeners:
                del self.listeners[topic]
                emptied = True
        self.count -= 1
        if self.count == 0:
            self._empty.set()
        if emptied:
            # remove() runs in a stream's finally, often during cancellation:
            # it must not await, so the group leave runs as its own task.
            self._spawn(self._sync_groups())

    def dispatch(self, message: dict) -> None:
        """Encode one layer message once and queue it for every listener."""
        topic = message["topic"]
        seq = EventId.parse(message["id"]).seq
        if seq > self.positions.get(topic, 0):
            self.positions[topic] = seq
        listeners = self.listeners.get(topic)
        if not listeners:
            return
        frame = encode_event(Event(message["event_type"], message["data"], message["id"]))
        for listener in listeners:
            if not listener.deliver(seq, frame) and listener.close_reason == SLOW:
                self.stats["slow_clients_closed"] += 1
        self.stats["events_delivered"] += len(listeners)

    async def drain(self, timeout: float) -> int:
        """
        Deliver what was published before now, then close every listener
        with a farewell. Return how many streams were still open after
        ``timeout`` seconds.
        """
        if self.count:
            await self._catch_up()
        for listeners in list(self.listeners.values()):
            for listener in listeners:
                listener.close(SHUTDOWN)
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        except TimeoutError:
            pass
        return self.count

    async def close(self) -> None:
        """Stop receiving and leave every group (used when a loop ends)."""
        self.listeners.clear()
        await self._sync_groups()

    async def _catch_up(self) -> None:
        # Events already in history may still be in the layer on their way
        # here; fetch them from history so none is lost to the farewell.
        history = get_history()
        head = await history.head()
        for topic in list(self.listeners):
            position = EventId(head.epoch, self.positions.get(topic, head.seq))
            for event in await history.events_after([topic], position) or ():
                self.dispatch({"topic": topic, "event_type": event.type, "id": event.id, "data": event.data})

    async def _sync_groups(self) -> None:
        async with self._membership:
            wanted = set(self.listeners)
            if wanted and self.channel is None:
                self.channel = await self.layer.new_channel("notifications.")
                self._receiver = self._spawn(self._receive_loop(self.channel))
                self._refresher = self._spawn(self._refresh_loop())
            for topic in wanted - self.joined:
                await self.layer.group_add(group_name(topic), self.channel)
                self.joined.add(topic)
                self.positions.setdefault(topic, (await get_history().head()).seq)
            for topic in self.joined - wanted:
                await self.layer.group_discard(group_name(topic), self.channel)
                self.joined.discard(topic)
                self.positions.pop(topic, None)
            if not wanted and self.channel is not None:
                self._receiver.cancel()
                self._refresher.cancel()
                self.channel = None

    async def _receive_loop(self, channel: str) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats["layer_errors"] += 1
                logger.warning("Channel layer receive failed error=%r; retrying in %ss", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5)
                await self._rejoin()
                continue
            backoff = 0.1
            if message.get("type") == "notifications.event":
                self.dispatch(message)

    async def _refresh_loop(self) -> None:
        # Layers forget group members after group_expiry (a day by default);
        # a process that serves streams for longer must re-add itself.
        interval = max(getattr(self.layer, "group_expiry", 86400) / 2, 1)
        while True:
            await asyncio.sleep(interval)
            await self._rejoin()

    async def _rejoin(self) -> None:
        async with self._membership:
            for topic in list(self.joined):
                try:
                    await self.layer.group_add(group_name(topic), self.channel)
                except Exception as exc:
                    self.stats["layer_errors"] += 1
                    logger.warning("Channel layer group_add failed topic=%s error=%r", topic, exc)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """Return the hub of the running event loop, creating it on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(setting("CHANNEL_LAYER"))
        process.serving_loop = loop
    return hub


def existing_hub(loop: asyncio.AbstractEventLoop) -> Hub | None:
    """Return the hub of ``loop`` if it has one."""
    return _hubs.get(loop)
