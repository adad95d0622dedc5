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

When the history cannot answer from the cursor because it started a new
epoch, every stream gets ``stream_reset`` with the position it resumes from:
never a silent gap. When it cannot because events of some topics were
evicted before they were read here, only the streams that had not received
those events are reset (evictions.py). A stream that opens with a
Last-Event-ID reads the history by itself first (catchup.py).
"""

import asyncio
import logging

from .evictions import Evictions
from .exceptions import InvalidEventId, describe
from .fanout import Fanout, Listener
from .history import EventHistory, EventId, Page, get_history
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
        self.evictions = Evictions(fanout, stats)
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
            # Their streams opened before that head: nothing of theirs went
            # by unread.
            self.evictions.restart()

    async def open(self, listener: Listener) -> EventId:
        """Make a new stream's ``listener`` live; return the position it starts from."""
        head = None
        if self.evictions.unread(listener):
            # A burst may have evicted events of its topics after the cursor.
            # They were published before this stream opened; start after
            # them rather than reset a stream that has just opened.
            head = await self.history.head()
        async with self.lock:
            position = self.evictions.start_of(listener, self.cursor)
            if head is not None and head.epoch == self.epoch:
                position = max(position, head.seq)
            self.go_live(listener, position)
            return EventId(self.epoch, position)

    def go_live(self, listener: Listener, position: int) -> None:
        """Make ``listener`` take live events after ``position``. Caller holds self.lock."""
        listener.go_live(position)
        self.evictions.went_live(listener, position, self.cursor)

    def forget(self, topics: list[str]) -> None:
        """Forget those of ``topics`` no listener here listens to any more."""
        self.evictions.forget(topics)

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
                page = await self._read(topics)
                if page is None:
                    if not await self._recover(topics):
                        return
                    continue
                self.fanout.deliver(page.records)
                self.cursor = page.through.seq
                self.evictions.passed(self.cursor)
                if len(page.records) < PAGE_SIZE:
                    return
                # Let streams send this page before the next one fills their queues.
                await asyncio.sleep(0)
            self._requested.set()

    async def _read(self, topics: list[str]) -> Page | None:
        # One read in the normal case; one per floor while evicted topics
        # are read from further on, merged into one page in seq order.
        pages = []
        for start, group in self.evictions.starts(topics, self.cursor).items():
            self.stats.history_reads += 1
            page = await self.history.read(group, EventId(self.epoch, start), PAGE_SIZE)
            if page is None:
                return None
            pages.append(page)
        if len(pages) == 1:
            return pages[0]
        # Each page is complete up to its own ``through``: together, up to the lowest.
        through = min(page.through.seq for page in pages)
        records = sorted(
            (record for page in pages for record in page.records if record.seq <= through),
            key=lambda record: record.seq,
        )
        if len(records) > PAGE_SIZE:
            del records[PAGE_SIZE:]
            through = records[-1].seq
        return Page(records, EventId(self.epoch, through))

    async def _recover(self, topics: list[str]) -> bool:
        """
        The history could not answer a read of ``topics``: reset the streams
        that lost events. Return whether reading can go on. Caller holds self.lock.
        """
        head = await self.history.head()
        same_epoch = head.epoch == self.epoch and head.seq >= self.cursor
        if same_epoch and await self.evictions.recover(self.history, topics, self.cursor, head):
            return True
        # A new epoch, or no single topic to blame: nothing here can be resumed.
        await self._reset(head)
        return False

    async def _reset(self, head: EventId) -> None:
        # Caller holds self.lock. The history started a new epoch (Redis
        # restarted without persistence, or was flushed), or lost events it
        # had already answered with: nothing here can be resumed.
        frame = reset_frame(HISTORY_UNAVAILABLE, head)
        self.epoch, self.cursor = head.epoch, head.seq
        self.evictions.floors.clear()
        count = self.fanout.reset(frame, head.seq)
        self.stats.open_streams_reset += count
        logger.warning("Streams cannot catch up from history; reset streams=%d head=%s", count, head)
