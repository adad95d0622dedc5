"""
The hub of one event loop: where published events meet this process's streams.

    publish -> history + channel layer -> subscription -> history reader
            -> fan-out -> stream

Three parts, each in its own module:

- subscription.py: one channel-layer channel in the group of every topic
  that has listeners here; its messages only wake the reader up;
- reader.py: the history reader, which reads events after its cursor in seq
  order (on a wake-up, and every POLL_INTERVAL seconds); a reconnecting
  stream catches up by itself before it joins the live fan-out (catchup.py);
- fanout.py: the listeners, by topic and user, each event encoded once.

Layer traffic grows with processes, not with open streams, and what the
layer loses, repeats or reorders cannot reach a stream: see README, "Delivery
guarantees".
"""

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator

from channels.layers import get_channel_layer

from . import process
from .catchup import catch_up
from .conf import setting
from .exceptions import BackendUnavailable, describe
from .fanout import SHUTDOWN, Fanout, Listener
from .history import EventHistory
from .reader import HistoryReader
from .stats import HubStats
from .subscription import ChannelLayer, Subscription

logger = logging.getLogger(__name__)


class Hub:
    """Serve this event loop's listeners from the history, woken by the channel layer."""

    def __init__(
        self,
        layer: ChannelLayer | None = None,
        history: EventHistory | None = None,
        poll_interval: float | None = None,
    ):
        self.stats = HubStats()
        self.fanout = Fanout(self.stats)
        self.reader = HistoryReader(history, self.fanout, self.stats)
        self.subscription = Subscription(
            layer or get_channel_layer(setting("CHANNEL_LAYER")),
            on_message=self.reader.wake,
            on_rejoined=self.reader.request,
            stats=self.stats,
        )
        # The topics listened to here, live: no copy per stream opened or closed.
        self.subscription.wanted = self.fanout.listeners.keys()
        self.poll_interval = setting("POLL_INTERVAL") if poll_interval is None else poll_interval
        self.drain_seconds: float | None = None
        self._reading: asyncio.Task | None = None
        # Streams opening at once on an idle hub must start the reader once:
        # each start() moves the cursor to the head.
        self._starting = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    @property
    def count(self) -> int:
        """How many streams are open on this loop."""
        return self.fanout.count

    @property
    def listeners(self) -> dict[str, set[Listener]]:
        return self.fanout.listeners

    def limit_reached(self, user: str | None) -> tuple[str, int] | None:
        return self.fanout.limit_reached(user)

    async def add(self, listener: Listener) -> None:
        """Register ``listener`` and wait until its groups are joined."""
        new_topics = not self.subscription.joined.issuperset(listener.topics)
        self.fanout.add(listener)
        try:
            async with self._starting:
                if self._reading is None:
                    await self.reader.start()
                    self._reading = self._spawn(self.reader.run(self.poll_interval))
            # A leave in progress may still count this listener's topics as
            # joined: wait for it, then join again whatever it left.
            if new_topics or self.subscription.busy:
                await self.subscription.sync()
                # Events published while the group was being joined were
                # announced to nobody here.
                self.reader.request()
        except Exception as exc:
            raise BackendUnavailable(
                f"The channel layer or history cannot be reached: {describe(exc)}."
            ) from exc

    def remove(self, listener: Listener) -> None:
        """Forget ``listener`` now; leave groups nobody here listens to."""
        if self.fanout.remove(listener):
            self.reader.forget(listener.topics)
            # remove() runs in a stream's finally, often during cancellation:
            # it must not await, so the group leave runs as its own task.
            self._spawn(self._leave_groups())

    def catch_up(self, listener: Listener, last_event_id: str | None) -> AsyncIterator[bytes]:
        """Yield what ``listener``'s stream missed; see catchup.catch_up()."""
        return catch_up(self.reader, listener, last_event_id)

    def close_user(self, user: str, reason: str) -> int:
        """Close every stream of ``user``; return how many there were."""
        return self.fanout.close_user(user, reason)

    async def drain(self, timeout: float) -> int:
        """
        Deliver what was published before now, then close every listener
        with a farewell. Return how many streams were still open after
        ``timeout`` seconds.
        """
        started = time.monotonic()
        if self.count:
            try:
                async with asyncio.timeout(timeout):
                    await self.reader.pump()
            except (BackendUnavailable, TimeoutError) as exc:
                logger.warning("Drain could not catch up from history error=%r", describe(exc))
        self.fanout.close_all(SHUTDOWN)
        await self.fanout.wait_empty(max(timeout - (time.monotonic() - started), 0))
        self.drain_seconds = time.monotonic() - started
        return self.count

    async def close(self) -> None:
        """Stop reading and leave every group (used when a loop ends)."""
        self.fanout.listeners.clear()
        await self._sync_groups()

    async def _sync_groups(self) -> None:
        await self.subscription.sync()
        # A stream may have opened while the groups were being left.
        if not self.fanout.listeners and self._reading is not None:
            self._reading.cancel()
            self._reading = None

    async def _leave_groups(self) -> None:
        try:
            await self._sync_groups()
        except Exception as exc:
            # The next sync (a change of listeners, or the refresh within
            # REFRESH_INTERVAL) leaves whatever group is still unwanted.
            self.stats.layer_errors += 1
            logger.warning("Channel layer group_discard failed error=%r", describe(exc))

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
        hub = _hubs[loop] = Hub()
        process.serving_loop = loop
    return hub


def existing_hub(loop: asyncio.AbstractEventLoop) -> Hub | None:
    """Return the hub of ``loop`` if it has one."""
    return _hubs.get(loop)


def all_hubs() -> dict[asyncio.AbstractEventLoop, Hub]:
    """Return the hub of every event loop of this process that serves streams, by loop."""
    return dict(_hubs)
