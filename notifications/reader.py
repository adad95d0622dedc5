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
those events are reset; the others lose nothing and are not disturbed, and
the evicted topics are read from where their streams now are (``floors``)
until the cursor passes that. A stream that opens with a Last-Event-ID reads
the history by itself first (catchup.py).
"""

import asyncio
import logging

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
        # Per topic whose events up to there were evicted before they were
        # read here, the seq (above the cursor) it is read after: no live
        # listener of it takes an event at or below it. Usually empty.
        self.floors: dict[str, int] = {}
        # Topics whose events after the cursor are owed to a stream here: a
        # listener went live on them, or they were listened to when the
        # cursor was set to the head, since they last had no listener here.
        self.live_topics: set[str] = set()
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
            self.floors.clear()
            # Their streams opened before that head: nothing of theirs went
            # by unread.
            self.live_topics = set(self.fanout.listeners)

    async def open(self, listener: Listener) -> EventId:
        """Make a new stream's ``listener`` live; return the position it starts from."""
        head = None
        if not self.live_topics.issuperset(listener.topics):
            # Nobody here listened to one of its topics, so nobody read it:
            # a burst there may have evicted events after the cursor. They
            # were published before this stream opened; start after them
            # rather than reset a stream that has just opened.
            head = await self.history.head()
        async with self.lock:
            position = max([self.cursor, *(self.floors.get(topic, 0) for topic in listener.topics)])
            if head is not None and head.epoch == self.epoch:
                position = max(position, head.seq)
            self.go_live(listener, position)
            return EventId(self.epoch, position)

    def go_live(self, listener: Listener, position: int) -> None:
        """Make ``listener`` take live events after ``position``. Caller holds self.lock."""
        listener.go_live(position)
        for topic in listener.topics:
            self.live_topics.add(topic)
            floor = self.floors.get(topic)
            if floor is not None and position < floor:
                # Read its events after ``position`` for this listener: the
                # catch-up that brought it here read that far and no further.
                if position > self.cursor:
                    self.floors[topic] = position
                else:
                    del self.floors[topic]

    def forget(self, topics: list[str]) -> None:
        """Forget those of ``topics`` no listener here listens to any more."""
        for topic in topics:
            if topic not in self.fanout.listeners:
                self.live_topics.discard(topic)
                self.floors.pop(topic, None)

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
                if self.floors:
                    self.floors = {topic: seq for topic, seq in self.floors.items() if seq > self.cursor}
                if len(page.records) < PAGE_SIZE:
                    return
                # Let streams send this page before the next one fills their queues.
                await asyncio.sleep(0)
            self._requested.set()

    def _starts(self, topics: list[str]) -> dict[int, list[str]]:
        """``topics`` by the seq they are read after."""
        if not self.floors:
            return {self.cursor: topics}
        starts: dict[int, list[str]] = {}
        for topic in topics:
            starts.setdefault(self.floors.get(topic, self.cursor), []).append(topic)
        return starts

    async def _read(self, topics: list[str]) -> Page | None:
        # One read in the normal case; one per floor while evicted topics
        # are read from further on, merged into one page in seq order.
        pages = []
        for start, group in self._starts(topics).items():
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
        if head.epoch != self.epoch or head.seq < self.cursor:
            await self._reset(head)
            return False
        evicted = []
        for start, group in self._starts(topics).items():
            evicted += [(topic, start) for topic in await self._evicted(group, start)]
        if not evicted:
            # Every topic answers on its own, yet not together: nothing to
            # tell which streams lost what. Reset them all, as for a new epoch.
            await self._reset(head)
            return False
        lost: set[Listener] = set()
        for topic, start in evicted:
            lost.update(await self._behind(topic, start))
        frames: dict[int, bytes] = {}
        for listener in lost:
            # Never back: head() may answer from before a catch-up that took
            # this listener further.
            resume = max(head.seq, listener.position)
            frame = frames.get(resume)
            if frame is None:
                frame = frames[resume] = reset_frame(HISTORY_UNAVAILABLE, EventId(self.epoch, resume))
            listener.reset(frame, resume)
        for topic, _ in evicted:
            # Everyone live on it is now past what was evicted.
            floor = min((listener.position for listener in self._live(topic)), default=head.seq)
            if floor > self.cursor:
                self.floors[topic] = floor
        self.stats.open_streams_reset += len(lost)
        logger.warning(
            "Streams cannot catch up from history; reset streams=%d topics=%s head=%s",
            len(lost),
            ",".join(sorted(topic for topic, _ in evicted)),
            head,
        )
        return True

    def _live(self, topic: str) -> list[Listener]:
        return [
            listener
            for listener in self.fanout.listeners.get(topic, ())
            if listener.live and listener.close_reason is None
        ]

    async def _evicted(self, topics: list[str], start: int) -> list[str]:
        """Return which of ``topics`` the history cannot answer after ``start``: by halves."""
        after = EventId(self.epoch, start)
        if await self._answers(topics, after):
            return []
        evicted, failing = [], [topics]
        # A binary tree with len(topics) leaves has fewer than 2 * len(topics) nodes.
        for _ in range(2 * len(topics)):
            if not failing:
                break
            part = failing.pop()
            if len(part) == 1:
                evicted += part
                continue
            half = len(part) // 2
            for piece in (part[:half], part[half:]):
                if not await self._answers(piece, after):
                    failing.append(piece)
        return evicted

    async def _behind(self, topic: str, start: int) -> list[Listener]:
        """
        Return the live listeners of ``topic`` that lost events: the history
        cannot answer after ``start`` for it, nor after where they are.
        """
        listeners = self._live(topic)
        # Each has every event of its topics up to the cursor, and up to its
        # position (a catch-up or a new stream may have taken it further).
        ahead = sorted({listener.position for listener in listeners if listener.position > start})
        # The history answers after a position once it answers after a lower one:
        # find the lowest position it answers after, by halves.
        low, high = 0, len(ahead)
        for _ in range(len(ahead).bit_length() + 1):
            if low >= high:
                break
            middle = (low + high) // 2
            if await self._answers([topic], EventId(self.epoch, ahead[middle])):
                high = middle
            else:
                low = middle + 1
        answered = ahead[low] if low < len(ahead) else None
        return [listener for listener in listeners if answered is None or listener.position < answered]

    async def _answers(self, topics: list[str], after: EventId) -> bool:
        self.stats.history_reads += 1
        return await self.history.read(topics, after, 1) is not None

    async def _reset(self, head: EventId) -> None:
        # Caller holds self.lock. The history started a new epoch (Redis
        # restarted without persistence, or was flushed), or lost events it
        # had already answered with: nothing here can be resumed.
        frame = reset_frame(HISTORY_UNAVAILABLE, head)
        self.epoch, self.cursor = head.epoch, head.seq
        self.floors.clear()
        count = self.fanout.reset(frame, head.seq)
        self.stats.open_streams_reset += count
        logger.warning("Streams cannot catch up from history; reset streams=%d head=%s", count, head)
