"""
Per-process fan-out from the channel layer to the streams of this process.

Every open stream is a Listener in the hub of its event loop. The hub holds
one channel-layer channel that joins the group of each topic its listeners
want, once, however many listeners there are; it encodes each
event once and appends the bytes to every interested listener's queue.
Layer traffic therefore grows with processes, not with open streams.

A layer shared between processes (channels_redis) can fail and recover
under open streams. Every resync (after a failed receive, and every
``resync_interval`` seconds) joins the groups again and compares with the
history: events the layer did not bring are fanned out from history, and
when the history lost what streams already saw (a new epoch: Redis restarted
without persistence or was flushed) every listener gets a ``stream_reset``
in-band and continues from the new head. Streams stay open throughout.
"""

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import Counter

from channels.layers import get_channel_layer

from . import process
from .conf import setting
from .encoding import Event, encode_event
from .exceptions import BackendUnavailable, describe
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

# Longest pause, in seconds, between attempts to rejoin a failed layer: short,
# because events published once Redis is back reach streams only after it.
MAX_RETRY_PAUSE = 1

# The event that tells a client to refetch its state: what it missed cannot
# be replayed. Its id is where the stream resumes.
STREAM_RESET = "stream_reset"


def reset_frame(reason: str, position: EventId) -> bytes:
    """Return a ``stream_reset`` event for ``reason`` that resumes at ``position``."""
    return encode_event(Event(STREAM_RESET, json.dumps({"reason": reason}), str(position)))


class Wakeup:
    """
    An asyncio.Event for one waiter: the stream that owns the listener.

    asyncio.Event keeps its waiters in a deque of 760 bytes; with a listener
    per open stream that was a twentieth of the memory an idle stream costs.
    """

    __slots__ = ("_is_set", "_waiter")

    def __init__(self):
        self._is_set = False
        self._waiter: asyncio.Future | None = None

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        self._is_set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        self._is_set = False

    async def wait(self) -> None:
        """Return once set() was called (at once if it already was)."""
        if self._is_set:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Listener:
    """The inbox of one open stream: encoded frames waiting to be sent."""

    __slots__ = ("topics", "limit", "user", "frames", "wakeup", "close_reason", "skip_up_to")

    def __init__(self, topics: list[str], limit: int, user: str | None = None):
        self.topics = topics
        self.limit = limit
        # Primary key (as text) of the authenticated user, for per-user limits.
        self.user = user
        # A list, not a deque: an empty deque takes 760 bytes, an empty list 56.
        self.frames: list[tuple[int, bytes]] = []
        self.wakeup = Wakeup()
        self.close_reason: str | None = None
        # Frames at or below this seq were already sent by the replay (or
        # precede a reset).
        self.skip_up_to = 0

    def deliver(self, seq: int, frame: bytes) -> bool:
        """Queue ``frame``; return False if the listener is closed or overflowed."""
        if self.close_reason is not None:
            return False
        if seq <= self.skip_up_to:
            return True
        if len(self.frames) >= self.limit:
            # Never drop silently and never grow without bound: close the
            # stream; the client reconnects and catches up from history.
            self.close(SLOW)
            return False
        self.frames.append((seq, frame))
        self.wakeup.set()
        return True

    def skip_through(self, seq: int) -> None:
        """Drop queued and later frames at or below ``seq``: a replay sent them."""
        self.skip_up_to = seq
        self.frames = [item for item in self.frames if item[0] > seq]

    def reset(self, frame: bytes, seq: int) -> None:
        """Replace everything queued with the reset ``frame`` resuming after ``seq``."""
        if self.close_reason is None:
            self.skip_up_to = seq
            self.frames = [(seq, frame)]
            self.wakeup.set()

    def take(self) -> bytes:
        """Return every queued frame, as one chunk."""
        frames, self.frames = self.frames, []
        self.wakeup.clear()
        return b"".join(frame for _, frame in frames)

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self.wakeup.set()


class Hub:
    """Route events from the channel layer to this event loop's listeners."""

    # Seconds between resyncs while listeners are open (at most half the
    # layer's group_expiry). It bounds how long a Redis that restarted or was
    # flushed without this process seeing an error goes unnoticed.
    resync_interval: float = 30

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
        # The history epoch those positions belong to, the epochs left
        # behind by a reset, and the other epochs already looked into.
        self.epoch: str | None = None
        self.retired_epochs: set[str] = set()
        self._epochs_checked: set[str] = set()
        # Per topic, the highest seq fanned out from history by a resync:
        # the layer may still bring those events, which must not go out twice.
        self.replayed_up_to: dict[str, int] = {}
        # While a catch-up is under way, the seqs dispatch() fans out, per topic.
        self._dispatched: dict[str, set[int]] | None = None
        self.stats: Counter[str] = Counter()
        # Streams refused at open, by the setting whose limit they reached.
        self.refusals: Counter[str] = Counter()
        self.drain_seconds: float | None = None
        self._membership = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._receiver: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None
        self._resync_requested = False
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
            try:
                await self._sync_groups()
            except Exception as exc:
                raise BackendUnavailable(f"The channel layer cannot be reached: {describe(exc)}.") from exc

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
            self._spawn(self._leave_groups())

    def dispatch(self, message: dict, replayed: bool = False) -> None:
        """Encode one layer message once and queue it for every listener."""
        topic = message["topic"]
        event_id = EventId.parse(message["id"])
        seq = event_id.seq
        if event_id.epoch != self.epoch and self.epoch is not None:
            if event_id.epoch in self.retired_epochs:
                return  # A straggler from before a reset.
            if event_id.epoch not in self._epochs_checked:
                # The history may have started a new epoch: a resync resets
                # listeners, which supersedes this event if it goes out now.
                self._epochs_checked.add(event_id.epoch)
                self.request_resync()
        if not replayed and seq <= self.replayed_up_to.get(topic, 0):
            return
        if self._dispatched is not None:
            self._dispatched.setdefault(topic, set()).add(seq)
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
            try:
                async with asyncio.timeout(timeout), self._membership:
                    with self._watching() as since:
                        await self._catch_up(await get_history().head(), since)
            except (BackendUnavailable, TimeoutError) as exc:
                logger.warning("Drain could not catch up from history error=%r", describe(exc))
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

    def request_resync(self) -> None:
        """Schedule a resync unless one is already waiting to run."""
        if not self._resync_requested and self.channel is not None:
            self._resync_requested = True
            self._spawn(self._resync_or_log())

    async def resync(self, after_failure: bool = False) -> None:
        """
        Join every wanted group again, then compare with the history: reset
        listeners if it lost what they saw, and fan out what the layer missed.
        ``after_failure`` says the layer failed, so events history can no
        longer replay (evicted meanwhile) are lost: their listeners are reset.
        """
        async with self._membership:
            self._resync_requested = False
            # Once a group is joined again, later events arrive while earlier
            # ones are still missing: catch up from the positions before.
            with self._watching() as since:
                await self._join_groups(refresh=True)
                if not self.joined:
                    return
                head = await get_history().head()
                if head.epoch != self.epoch or head.seq < max(self.positions.values(), default=0):
                    self._reset(list(self.joined), head)
                    since = dict(self.positions)
                await self._catch_up(head, since, reset_on_gap=after_failure)

    @contextlib.contextmanager
    def _watching(self):
        """Yield a copy of the positions and record what dispatch() fans out until the end."""
        self._dispatched = {}
        try:
            yield dict(self.positions)
        finally:
            self._dispatched = None

    async def _catch_up(self, head: EventId, since: dict[str, int], reset_on_gap: bool = False) -> None:
        # Caller holds self._membership, inside _watching(). Events in history
        # that did not come through the layer (still in flight, or lost while
        # it was away) are fanned out from history, once. Without a failure,
        # events history cannot replay are still on their way (HISTORY_SIZE
        # 0, say): no reset.
        history = get_history()
        for topic in list(self.listeners):
            position = since.get(topic, head.seq)
            events = await history.events_after([topic], EventId(head.epoch, position))
            if events is None:
                if reset_on_gap:
                    self._reset([topic], head)
                continue
            for event in events:
                seq = EventId.parse(event.id).seq
                if seq not in self._dispatched.get(topic, ()):
                    message = {"topic": topic, "event_type": event.type, "id": event.id, "data": event.data}
                    self.dispatch(message, replayed=True)
                    self.replayed_up_to[topic] = max(seq, self.replayed_up_to.get(topic, 0))

    def _reset(self, topics: list[str], head: EventId) -> None:
        frame = reset_frame("history_unavailable", head)
        reset = {listener for topic in topics for listener in self.listeners.get(topic, ())}
        for listener in reset:
            listener.reset(frame, head.seq)
        if head.epoch != self.epoch:
            self.retired_epochs.add(self.epoch)
            self.positions.clear()
            self.replayed_up_to.clear()
        for topic in topics:
            self.positions[topic] = head.seq
        self.epoch = head.epoch
        self.stats["open_streams_reset"] += len(reset)
        logger.warning("Streams cannot catch up from history; reset streams=%d head=%s", len(reset), head)

    async def _sync_groups(self) -> None:
        async with self._membership:
            await self._join_groups()

    async def _join_groups(self, refresh: bool = False) -> None:
        # Caller holds self._membership. With refresh, groups already joined
        # are joined again: the layer may have forgotten them.
        wanted = set(self.listeners)
        if wanted and self.channel is None:
            self.channel = await self.layer.new_channel("notifications.")
            self._receiver = self._spawn(self._receive_loop(self.channel))
            self._refresher = self._spawn(self._refresh_loop())
        for topic in wanted if refresh else wanted - self.joined:
            await self.layer.group_add(group_name(topic), self.channel)
            if topic not in self.joined:
                self.joined.add(topic)
                head = await get_history().head()
                self.epoch = self.epoch or head.epoch
                self.positions.setdefault(topic, head.seq)
                if head.epoch != self.epoch:
                    self.request_resync()
        for topic in self.joined - wanted:
            await self.layer.group_discard(group_name(topic), self.channel)
            self.joined.discard(topic)
            self.positions.pop(topic, None)
            self.replayed_up_to.pop(topic, None)
        if not wanted and self.channel is not None:
            self._receiver.cancel()
            self._refresher.cancel()
            self.channel = None

    async def _leave_groups(self) -> None:
        try:
            await self._sync_groups()
        except Exception as exc:
            # The next resync leaves whatever group is still unwanted.
            self.stats["layer_errors"] += 1
            logger.warning("Channel layer group_discard failed error=%r", describe(exc))

    async def _receive_loop(self, channel: str) -> None:
        pause = 0.1
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats["layer_errors"] += 1
                logger.warning("Channel layer receive failed error=%r; rejoining groups", describe(exc))
                await self._recover(pause)
                pause = min(pause * 2, MAX_RETRY_PAUSE)
                continue
            pause = 0.1
            if message.get("type") == "notifications.event":
                self.dispatch(message)

    async def _recover(self, backoff: float) -> None:
        # Retry until the groups are joined again and the history compared:
        # a receive that works again proves nothing, the layer may have
        # restarted without this process's group memberships.
        started = time.monotonic()
        while True:
            await asyncio.sleep(backoff)
            try:
                await self.resync(after_failure=True)
            except Exception as exc:
                self.stats["layer_errors"] += 1
                logger.debug("Resync failed error=%r; retrying in %ss", describe(exc), backoff)
                backoff = min(backoff * 2, MAX_RETRY_PAUSE)
                continue
            logger.info("Channel layer back after %.1fs; groups rejoined", time.monotonic() - started)
            return

    async def _refresh_loop(self) -> None:
        # Layers forget group members after group_expiry (a day by default),
        # and a Redis may restart or be flushed between two receives without
        # an error reaching this process: resync now and then.
        interval = max(min(getattr(self.layer, "group_expiry", 86400) / 2, self.resync_interval), 0.1)
        while True:
            await asyncio.sleep(interval)
            await self._resync_or_log()

    async def _resync_or_log(self) -> None:
        try:
            await self.resync()
        except Exception as exc:
            self.stats["layer_errors"] += 1
            logger.warning("Resync failed error=%r; next in %ss", describe(exc), self.resync_interval)

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
