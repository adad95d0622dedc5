"""
Per-process fan-out: this process's open streams, by topic and by user.

Every open stream is a Listener. The hub hands the fan-out records read from
history, in seq order; each event is encoded once and its bytes appended to
the inbox of every listener of its topic. A listener takes only events after
its position, so whatever delivers an event twice (a replay and the live
read racing, a duplicate wake-up) cannot make a stream repeat one or go
back: ids on one connection strictly increase.
"""

import asyncio
import itertools

from .conf import setting
from .encoding import encode_event
from .history import Record
from .stats import HubStats

# Why a listener was closed.
SLOW = "slow"
SHUTDOWN = "shutdown"
# MAX_STREAM_AGE passed: the client reconnects and access is checked again.
EXPIRED = "expired"
# The user logged out: queued frames are dropped, the reconnect is refused.
REVOKED = "revoked"

# Streams woken per turn of the event loop when an event reaches many at
# once. Each woken stream writes in the next turn; a publish request, a new
# stream or a heartbeat queued meanwhile then waits for one slice of writes,
# not for all of them (about 20 ms at 1,000 streams). A thread hop (Django
# sends request_started and request_finished through one) takes two turns.
# fanout benchmark at 1,000 streams, publish p50/p99: 64 -> 46/103 ms,
# 32 -> 33/129 ms, 16 -> 18-21/35-60 ms at the same CPU per event; 8 was
# no better.
WAKE_SLICE = 16

# Limits checked when a stream opens, by the setting that sets them.
STREAMS_LIMIT = "MAX_STREAMS"
USER_STREAMS_LIMIT = "MAX_STREAMS_PER_USER"


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
    """
    The inbox of one open stream: encoded frames waiting to be sent.

    ``position`` is the seq of the last event queued (or sent) on this
    connection. Until ``live`` is set the stream is still catching up from
    history by itself, and the fan-out leaves it alone.
    """

    __slots__ = (
        "topics",
        "user",
        "max_frames",
        "max_bytes",
        "frames",
        "queued_bytes",
        "wakeup",
        "close_reason",
        "position",
        "live",
    )

    def __init__(self, topics: list[str], max_frames: int, max_bytes: int, user: str | None = None):
        self.topics = topics
        # Primary key (as text) of the authenticated user, for per-user limits.
        self.user = user
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        # A list, not a deque: an empty deque takes 760 bytes, an empty list 56.
        self.frames: list[bytes] = []
        self.queued_bytes = 0
        self.wakeup = Wakeup()
        self.close_reason: str | None = None
        self.position = 0
        self.live = False

    def go_live(self, position: int) -> None:
        """Take live events after ``position`` from now on."""
        self.position = position
        self.live = True

    def wants(self, seq: int) -> bool:
        """Whether event ``seq`` is one to queue: open, live, and past what it has."""
        return self.close_reason is None and self.live and seq > self.position

    def deliver(self, seq: int, frame: bytes) -> bool:
        """Queue ``frame`` if it wants it; return False if the listener is closed or overflowed."""
        if self.close_reason is not None:
            return False
        if not self.wants(seq):
            return True
        if self.queue(seq, frame):
            self.wakeup.set()
            return True
        return False

    def queue(self, seq: int, frame: bytes) -> bool:
        """
        Queue ``frame``, which it wants, without waking the stream (the
        caller does); return False if that overflowed it and closed it.
        """
        if len(self.frames) >= self.max_frames or self.queued_bytes + len(frame) > self.max_bytes:
            # Never drop silently and never grow without bound: close the
            # stream; the client reconnects and catches up from history.
            self.close(SLOW)
            return False
        self.frames.append(frame)
        self.queued_bytes += len(frame)
        self.position = seq
        return True

    def reset(self, frame: bytes, position: int) -> None:
        """Replace everything queued with the reset ``frame`` resuming at ``position``."""
        if self.close_reason is None:
            self.frames = [frame]
            self.queued_bytes = len(frame)
            self.go_live(position)
            self.wakeup.set()

    def take(self) -> bytes:
        """Return every queued frame, as one chunk."""
        frames, self.frames = self.frames, []
        self.queued_bytes = 0
        self.wakeup.clear()
        return b"".join(frames)

    def close(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self.wakeup.set()


class SlicedWakeups:
    """Wake listeners WAKE_SLICE per turn of the event loop, in the order they were given."""

    def __init__(self):
        # A dict as an ordered set: a listener given twice is woken once.
        self._pending: dict[Listener, None] = {}

    def add(self, listeners: list[Listener]) -> None:
        if not listeners:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._wake_slice)
        self._pending.update(dict.fromkeys(listeners))

    def __len__(self) -> int:
        """Return how many listeners are still to be woken."""
        return len(self._pending)

    def _wake_slice(self) -> None:
        pending = self._pending
        for listener in list(itertools.islice(pending, WAKE_SLICE)):
            del pending[listener]
            listener.wakeup.set()
        if pending:
            asyncio.get_running_loop().call_soon(self._wake_slice)


class Fanout:
    """The listeners of one event loop, by topic and by user."""

    def __init__(self, stats: HubStats):
        self.stats = stats
        self.wakeups = SlicedWakeups()
        self.listeners: dict[str, set[Listener]] = {}
        self.by_user: dict[str, set[Listener]] = {}
        self.count = 0
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

    def add(self, listener: Listener) -> None:
        for topic in listener.topics:
            self.listeners.setdefault(topic, set()).add(listener)
        if listener.user is not None:
            self.by_user.setdefault(listener.user, set()).add(listener)
        self.count += 1
        self._empty.clear()

    def remove(self, listener: Listener) -> bool:
        """Forget ``listener``; return whether a topic lost its last listener."""
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
        return emptied

    def deliver(self, records: list[Record]) -> None:
        """Encode each record once and queue it for every listener of its topic."""
        delivered = 0
        woken: list[Listener] = []
        for record in records:
            listeners = self.listeners.get(record.topic)
            if not listeners:
                continue
            frame = encode_event(record.event)
            seq = record.seq
            for listener in listeners:
                # A closed listener stays here until its stream wakes up and
                # leaves; one still catching up, or that has this event, gets
                # no frame: neither is counted nor woken.
                if not listener.wants(seq):
                    continue
                if listener.queue(seq, frame):
                    delivered += 1
                    woken.append(listener)
                else:  # Closed as slow by this frame: counted once.
                    self.stats.slow_clients_closed += 1
        # Frames are queued now, in order; only when each stream writes them is spread.
        self.wakeups.add(woken)
        self.stats.events_delivered += delivered

    def reset(self, frame: bytes, position: int) -> int:
        """Send every live listener ``frame`` in place of what it queued; return how many."""
        # One still catching up finds out from its own read; made live here,
        # it would also send the page it read, then go back to ``position``.
        listeners = {
            listener
            for by_topic in self.listeners.values()
            for listener in by_topic
            if listener.live and listener.close_reason is None
        }
        for listener in listeners:
            listener.reset(frame, position)
        return len(listeners)

    def close_user(self, user: str, reason: str) -> int:
        """Close every stream of ``user``; return how many there were."""
        streams = list(self.by_user.get(user, ()))
        for listener in streams:
            listener.close(reason)
        return len(streams)

    def close_all(self, reason: str) -> None:
        for listeners in list(self.listeners.values()):
            for listener in listeners:
                listener.close(reason)

    async def wait_empty(self, timeout: float) -> None:
        """Return when no listener is left, or after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        except TimeoutError:
            pass
