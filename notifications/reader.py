"""
Ordering: this event loop's streams are fed from the history, in seq order.

The history is the one log of events (see history/base.py). Each event loop's
``HistoryReader`` keeps a cursor in it: every event of the topics listened to
here, up to the cursor, has been handed to the fan-out, in seq order. A
wake-up from the channel layer, or a poll every POLL_INTERVAL seconds, makes
it read what follows the cursor. Because the history assigns seqs and stores
events in one atomic step, and answers from one snapshot, reading after the
cursor can neither skip an event nor see one twice, whatever the layer did
with its messages and however many processes publish at once; and a stream
on several topics gets them merged in seq order.

When the history cannot answer from the cursor (a new epoch, or events
evicted before they were read here), every stream gets ``stream_reset``
with the position it resumes from: never a silent gap. A stream that opens
with a Last-Event-ID reads the history by itself first (catchup.py).
"""

import asyncio
import logging

from .exceptions import InvalidEventId, describe
from .fanout import Fanout
from .history import EventHistory, EventId, get_history
from .protocol import HISTORY_UNAVAILABLE, announced_id, reset_frame
from .stats import HubStats

logger = logging.getLogger(__name__)

# Events per history read. It bounds what a stream holds while it replays.
PAGE_SIZE = 100
# Pages one pump reads before it lets other work run.
MAX_PUMP_PAGES = 50


class HistoryReader:
    """Read the history after a cursor, in order, into the fan-out."""

    def __init__(self, history: EventHistory | None, fanout: Fanout, stats: HubStats):
        # None: the project's history, looked up on each use, as publish() does.
        self._history = history
        self.fanout = fanout
        self.stats = stats
        self.epoch: str | None = None
        self.cursor = 0
        # Held while the cursor moves, so a stream joining the live fan-out
        # (catchup.py) sees a cursor that is not about to change under it.
        self.lock = asyncio.Lock()
        self._requested = asyncio.Event()

    @property
    def history(self) -> EventHistory:
        return self._history or get_history()

    @property
    def position(self) -> EventId:
        return EventId(self.epoch, self.cursor)

    async def start(self) -> None:
        """Start from the head of the history: nobody here listened before."""
        async with self.lock:
            head = await self.history.head()
            self.epoch, self.cursor = head.epoch, head.seq

    def wake(self, message: dict) -> None:
        """Handle a layer message: read history unless it announces nothing new."""
        try:
            announced = announced_id(message)
        except InvalidEventId:
            self.stats.bad_layer_messages += 1
            logger.warning(
                "Ignoring a channel layer message without a valid id topic=%r", message.get("topic")
            )
            announced = None
        if announced is None or announced.epoch != self.epoch or announced.seq > self.cursor:
            self._requested.set()

    def request(self) -> None:
        """Read history as soon as possible."""
        self._requested.set()

    async def run(self, poll_interval: float) -> None:
        """Read history on every wake-up, and every ``poll_interval`` seconds regardless."""
        while True:
            try:
                async with asyncio.timeout(poll_interval):
                    await self._requested.wait()
            except TimeoutError:
                pass
            self._requested.clear()
            try:
                await self.pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # BackendUnavailable (Redis restarting): streams stay open, and
                # the next poll reads from the same cursor, losing nothing.
                logger.warning("Reading history failed error=%r; retrying", describe(exc))
                await asyncio.sleep(poll_interval)

    async def pump(self) -> None:
        """Hand the fan-out every event after the cursor, up to the head as it is now."""
        async with self.lock:
            for _ in range(MAX_PUMP_PAGES):
                topics = list(self.fanout.listeners)
                if not topics:
                    return
                page = await self.history.read(topics, self.position, PAGE_SIZE)
                self.stats.history_reads += 1
                if page is None:
                    await self._reset()
                    return
                self.fanout.deliver(page.records)
                self.cursor = page.through.seq
                if len(page.records) < PAGE_SIZE:
                    return
                # Let streams send this page before the next one fills their queues.
                await asyncio.sleep(0)
            self._requested.set()

    async def _reset(self) -> None:
        # Caller holds self.lock. The history cannot answer from the cursor:
        # it started a new epoch (Redis restarted without persistence, or was
        # flushed), or evicted events this loop had not read yet.
        head = await self.history.head()
        frame = reset_frame(HISTORY_UNAVAILABLE, head)
        self.epoch, self.cursor = head.epoch, head.seq
        count = self.fanout.reset(frame, head.seq)
        self.stats.open_streams_reset += count
        logger.warning("Streams cannot catch up from history; reset streams=%d head=%s", count, head)
