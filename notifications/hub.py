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
import time
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
# MAX_STREAM_AGE passed: the client reconnects and access is checked again.
EXPIRED = "expired"
# The user logged out: queued frames are dropped, the reconnect is refused.
REVOKED = "revoked"

# Limits checked when a stream opens, by the setting that sets them.
STREAMS_LIMIT = "MAX_STREAMS"
USER_STREAMS_LIMIT = "MAX_STREAMS_PER_USER"


class Listener:
    """The inbox of one open stream: encoded frames waiting to be sent."""

    __slots__ = ("topics", "limit", "user", "frames", "wakeup", "close_reason", "skip_up_to")

    def __init__(self, topics: list[str], limit: int, user: str | None = None):
        self.topics = topics
        self.limit = limit
        # Primary key (as text) of the authenticated user, for per-user limits.
        self.user = user
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
        self.by_user: dict[str, set[Listener]] = {}
        self.channel: str | None = None
        self.joined: set[str] = set()
        # Highest seq fanned out (or known at join time) per topic, so a
        # drain can catch up on events still in flight.
        self.positions: dict[str, int] = {}
        self.stats: Counter[str] = Counter()
        # Streams refused at open, by the setting whose limit they reached.
        self.refusals: Counter[str] = Counter()
        self.drain_seconds: float | None = None
        self._membership = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._receiver: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None
        self._empty = asyncio.Event()
        self._empty.set()

    def limit_reached(self, user: str | None) -> tuple[str, int] | None:
        """
        Return (setting, limit) if one more stream for ``user`` would exceed
        a limit. Call it right before add(), with no await in between, so
        that concurrent connections cannot all pass.
        """
        limit = setting(STREAMS_LIMIT)
        if limit is not None and self.count >= limit:
            return STREAMS_LIMIT, limit
        limit = setting(USER_STREAMS_LIMIT)
        if user is not None and limit is not None and len(self.by_user.get(user, ())) >= limit:
            return USER_STREAMS_LIMIT, limit
        return None

    async def add(self, listener: Listener) -> None:
        """Register ``listener`` and wait until its groups are joined."""
        for topic in listener.topics:
            self.listeners.setdefault(topic, set()).add(listener)
        if listener.user is not None:
            self.by_user.setdefault(listener.user, set()).add(listener)
        self.count += 1
        self._empty.clear()
        # A leave in progress may still count this listener's topics as
        # joined: wait for it, then join again whatever it left.
        if not self.joined.issuperset(listener.topics) or self._membership.locked():
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
        if listener.user is not None:
            streams = self.by_user.get(listener.user, set())
            streams.discard(listener)
            if not streams:
                self.by_user.pop(listener.user, None)
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
        delivered = 0
        for listener in listeners:
            # A closed listener stays here until its stream wakes up and
            # leaves; it must be counted as slow once, not once per event.
            was_open = listener.close_reason is None
            if listener.deliver(seq, frame):
                delivered += 1
            elif was_open and listener.close_reason == SLOW:
                self.stats["slow_clients_closed"] += 1
        self.stats["events_delivered"] += delivered

    def close_user(self, user: str, reason: str) -> int:
        """Close every stream of ``user``; return how many there were."""
        streams = list(self.by_user.get(user, ()))
        for listener in streams:
            listener.close(reason)
        return len(streams)

    async def drain(self, timeout: float) -> int:
        """
        Deliver what was published before now, then close every listener
        with a farewell. Return how many streams were still open after
        ``timeout`` seconds.
        """
        started = time.monotonic()
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
        self.drain_seconds = time.monotonic() - started
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


def all_hubs() -> dict[asyncio.AbstractEventLoop, Hub]:
    """Return the hub of every event loop of this process that serves streams, by loop."""
    return dict(_hubs)
