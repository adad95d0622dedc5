"""
Ordering and recovery: streams are read from history, in seq order.

The history is the one log of events (see history/base.py). Each event loop's
``HistoryReader`` keeps a cursor in it: every event of the topics listened to
here, up to the cursor, has been handed to the fan-out, in seq order. A
wake-up from the channel layer, or a poll every POLL_INTERVAL seconds, makes
it read what follows the cursor. Because the history assigns seqs and stores
events in one atomic step, and answers from one snapshot, reading after the
cursor can neither skip an event nor see one twice, whatever the layer did
with its messages and however many processes publish at once; and a stream
on several topics gets them merged in seq order.

A stream that opens with a Last-Event-ID first catches up by itself, page by
page, and joins the live fan-out once its own read reached the cursor. When
the history cannot answer (the position is of another epoch, or events after
it were evicted) the stream gets ``stream_reset`` with the position it
resumes from: never a silent gap.
"""

import asyncio
import logging
from collections.abc import AsyncIterator

from .encoding import encode_event, encode_position
from .exceptions import InvalidEventId, describe
from .fanout import SLOW, Fanout, Listener
from .history import EventHistory, EventId, Page, get_history
from .protocol import HISTORY_UNAVAILABLE, INVALID_ID, announced_id, reset_frame
from .stats import HubStats

logger = logging.getLogger(__name__)

# Events per history read. It bounds what a stream holds while it replays.
PAGE_SIZE = 100
# Pages a reconnecting stream reads by itself before it gives up and ends
# (the client comes back from where it got to): the history grows faster
# than this stream can read it.
MAX_CATCH_UP_PAGES = 1000
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
        # sees a cursor that is not about to change under it.
        self._lock = asyncio.Lock()
        self._requested = asyncio.Event()

    @property
    def history(self) -> EventHistory:
        return self._history or get_history()

    @property
    def position(self) -> EventId:
        return EventId(self.epoch, self.cursor)

    async def start(self) -> None:
        """Start from the head of the history: nobody here listened before."""
        async with self._lock:
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
        async with self._lock:
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

    async def catch_up(self, listener: Listener, last_event_id: str | None) -> AsyncIterator[bytes]:
        """
        Yield what a stream resuming after ``last_event_id`` missed, then make
        its listener live. A new stream (no ``last_event_id``) gets the
        position it starts from; one that cannot be answered, ``stream_reset``.

        A listener joins the live fan-out only while the lock is held: a
        live read in flight may have left its topics out, and would move the
        cursor past their events.
        """
        if last_event_id is None:
            # Without a position, a client whose connection drops before its
            # first event would come back without Last-Event-ID and miss what
            # was published meanwhile. A frame with an id and no data sets the
            # browser's last event id and fires no event.
            async with self._lock:
                listener.go_live(self.cursor)
                position = encode_position(str(self.position))
            yield position
            return
        try:
            after = EventId.parse(last_event_id)
        except InvalidEventId:
            async with self._lock:
                frame = self._reset_listener(listener, INVALID_ID)
            yield frame
            return
        for pages in range(MAX_CATCH_UP_PAGES):
            page = await self.history.read(listener.topics, after, PAGE_SIZE)
            if listener.live or listener.close_reason is not None:
                return
            if page is None:
                head = await self.history.head()
                # Never resume before what the client already has: that would
                # send it events again.
                has = after.seq if after.epoch == head.epoch == self.epoch and after.seq <= head.seq else 0
                async with self._lock:
                    frame = (
                        None if listener.live else self._reset_listener(listener, HISTORY_UNAVAILABLE, has)
                    )
                if frame is not None:
                    yield frame
                return
            if not pages:
                self.stats.replays += 1
            if len(page.records) < PAGE_SIZE and page.through.epoch == self.epoch:
                page = await self._join_live(listener, page)
            elif len(page.records) < PAGE_SIZE:
                # The history started a new epoch that this loop has not read
                # yet: its next read resets every listener, this one included.
                await self.pump()
            if page.records:
                self.stats.events_replayed += len(page.records)
                yield b"".join(encode_event(record.event) for record in page.records)
            if listener.live or listener.close_reason is not None:
                return
            after = page.through
        # Let the client come back from where it got to.
        listener.close(SLOW)

    async def _join_live(self, listener: Listener, page: Page) -> Page:
        """
        Make ``listener`` live after ``page``, a complete read, if nothing
        between it and the cursor is missing; return what it must still send.
        """
        async with self._lock:
            if listener.live or listener.close_reason is not None:
                return page
            if page.through.seq < self.cursor:
                # The live read went further while this one ran: read up to the
                # cursor while it cannot move.
                rest = await self.history.read(listener.topics, page.through, PAGE_SIZE)
                if rest is None or len(rest.records) == PAGE_SIZE:
                    return page  # Read on, or reset, without the lock.
                page = Page(page.records + rest.records, rest.through)
            listener.go_live(page.through.seq)
            return page

    def _reset_listener(self, listener: Listener, reason: str, has: int = 0) -> bytes:
        self.stats.resets[reason] += 1
        listener.go_live(max(self.cursor, has))
        return reset_frame(reason, EventId(self.epoch, listener.position))

    async def _reset(self) -> None:
        # Caller holds self._lock. The history cannot answer from the cursor:
        # it started a new epoch (Redis restarted without persistence, or was
        # flushed), or evicted events this loop had not read yet.
        head = await self.history.head()
        frame = reset_frame(HISTORY_UNAVAILABLE, head)
        self.epoch, self.cursor = head.epoch, head.seq
        count = self.fanout.reset(frame, head.seq)
        self.stats.open_streams_reset += count
        logger.warning("Streams cannot catch up from history; reset streams=%d head=%s", count, head)
