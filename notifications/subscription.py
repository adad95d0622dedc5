"""
The channel-layer subscription of one event loop: one channel, in the group
of every topic that has listeners here, and the loop that receives from it.

Messages only announce events (see protocol.py); the hub reads the events
themselves from history. So a layer that drops a message (a member over
``capacity``), repeats one or delivers them out of order delays an event
until the next message or the hub's poll, and nothing else. A receive that
fails (Redis restarting) is retried with backoff, and every group is joined
again once it works: the layer may have restarted without our memberships.

The hub says which topics it wants (``wanted``); every sync, whether for a
change of listeners, the periodic refresh or a rejoin, reads it once the
previous sync is over and makes ``joined`` match it. So a refresh that starts
while a group is being joined or left cannot undo that, and a leave that
failed is done by the next sync.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Protocol

from .exceptions import describe
from .protocol import EVERY_HUB_GROUP, LAYER_MESSAGE_TYPE
from .stats import HubStats
from .topics import group_name

logger = logging.getLogger(__name__)

# First and longest pause, in seconds, between attempts to rejoin a failed
# layer: short, because wake-ups reach this process only after it.
FIRST_RETRY_PAUSE = 0.1
MAX_RETRY_PAUSE = 1
# Seconds between joining every group again while listeners are open (at
# most half the layer's group_expiry): layers forget group members after
# group_expiry, and a Redis may restart between two receives without an
# error reaching this process.
REFRESH_INTERVAL = 30


class ChannelLayer(Protocol):
    """
    What a subscription uses of a channel layer: channels' BaseChannelLayer
    has it, and so has channels_redis' RedisPubSubChannelLayer, which is not
    a BaseChannelLayer.
    """

    async def new_channel(self, prefix: str, /) -> str: ...

    async def receive(self, channel: str, /) -> dict: ...

    async def group_add(self, group: str, channel: str, /) -> None: ...

    async def group_discard(self, group: str, channel: str, /) -> None: ...


class Subscription:
    """Keep one channel in the groups of ``wanted`` topics and pass on what it receives."""

    def __init__(
        self,
        layer: ChannelLayer,
        on_message: Callable[[dict], None],
        on_rejoined: Callable[[], None],
        stats: HubStats,
    ):
        self.layer = layer
        self.on_message = on_message
        # Called after the groups were joined again following a failure: events
        # announced meanwhile were not heard of.
        self.on_rejoined = on_rejoined
        self.stats = stats
        self.channel: str | None = None
        # The topics whose groups the channel should be in: the hub's, and
        # changed by the hub alone.
        self.wanted: AbstractSet[str] = set()
        # The groups it is in, or may still be in: a topic whose leave failed
        # stays here until a later sync leaves it.
        self.joined: set[str] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    @property
    def busy(self) -> bool:
        """Whether a join or leave is under way."""
        return self._lock.locked()

    async def sync(self, refresh: bool = False) -> None:
        """
        Join the group of every ``wanted`` topic and leave the others; with
        ``refresh``, join again the groups already joined.
        """
        async with self._lock:
            # Read only now: a sync that waited for the lock must not undo
            # what the hub asked for meanwhile.
            wanted = set(self.wanted)
            if wanted and self.channel is None:
                self.channel = await self.layer.new_channel("notifications.")
                self._spawn(self._receive_loop(self.channel))
                self._spawn(self._refresh_loop())
                refresh = True
            if wanted and refresh:
                await self.layer.group_add(EVERY_HUB_GROUP, self.channel)
            for topic in wanted if refresh else wanted - self.joined:
                await self.layer.group_add(group_name(topic), self.channel)
                self.joined.add(topic)
            for topic in self.joined - wanted:
                await self.layer.group_discard(group_name(topic), self.channel)
                self.joined.discard(topic)
            if not wanted and self.channel is not None:
                await self.layer.group_discard(EVERY_HUB_GROUP, self.channel)
                for task in self._tasks:
                    task.cancel()
                self.channel = None

    async def _receive_loop(self, channel: str) -> None:
        pause = FIRST_RETRY_PAUSE
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.layer_errors += 1
                logger.warning("Channel layer receive failed error=%r; rejoining groups", describe(exc))
                await self._rejoin(pause)
                pause = min(pause * 2, MAX_RETRY_PAUSE)
                continue
            pause = FIRST_RETRY_PAUSE
            if message.get("type") == LAYER_MESSAGE_TYPE:
                self.on_message(message)

    async def _rejoin(self, pause: float) -> None:
        # Retry until the groups are joined again: a receive that works again
        # proves nothing, the layer may have restarted without our groups.
        started = time.monotonic()
        while True:
            await asyncio.sleep(pause)
            error = await self._join_again()
            if error is None:
                break
            logger.debug("Rejoining groups failed error=%r; retrying in %ss", describe(error), pause)
            pause = min(pause * 2, MAX_RETRY_PAUSE)
        logger.info("Channel layer back after %.1fs; groups rejoined", time.monotonic() - started)
        self.on_rejoined()

    async def _refresh_loop(self) -> None:
        interval = max(min(getattr(self.layer, "group_expiry", 86400) / 2, REFRESH_INTERVAL), 0.1)
        while True:
            await asyncio.sleep(interval)
            error = await self._join_again()
            if error is not None:
                logger.warning("Refreshing groups failed error=%r; next in %ss", describe(error), interval)

    async def _join_again(self) -> Exception | None:
        """
        Join every wanted group again and leave any other (a leave that
        failed); return the error if that failed (it is counted).
        """
        try:
            await self.sync(refresh=True)
        except Exception as exc:
            self.stats.layer_errors += 1
            return exc
        return None

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
