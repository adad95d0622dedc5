"""
Events evicted before this event loop read them.

The history keeps HISTORY_SIZE events per topic. When more than that many
of one topic are published between two reads of a HistoryReader
(reader.py), the history cannot answer a read that includes that topic
from the reader's cursor. Only the streams of that topic that had not
received those events lost anything: they get ``stream_reset``, and every
other stream of the loop goes on undisturbed. Afterwards each evicted topic
is read from where its streams now are (its *floor*) until the cursor
passes that.

A topic nobody here listened to was read by nobody: a new stream on it
starts from the history's head, after whatever a burst before it evicted.
"""

import logging

from .fanout import Fanout, Listener
from .history import EventHistory, EventId
from .protocol import HISTORY_UNAVAILABLE, reset_frame
from .stats import HubStats

logger = logging.getLogger(__name__)


class Evictions:
    """One reader's evicted topics: where each is read from, and which streams lost events."""

    def __init__(self, fanout: Fanout, stats: HubStats):
        self.fanout = fanout
        self.stats = stats
        # Per topic whose events up to there were evicted before they were
        # read here, the seq (above the cursor) it is read after: no live
        # listener of it takes an event at or below it. Usually empty.
        self.floors: dict[str, int] = {}
        # Topics whose events after the cursor are owed to a stream here: a
        # listener went live on them, or they were listened to when the
        # cursor was set to the head, since they last had no listener here.
        self.live_topics: set[str] = set()

    def restart(self) -> None:
        """The cursor moved to the head: what the loop's streams listen to is owed from there."""
        self.floors.clear()
        self.live_topics = set(self.fanout.listeners)

    def unread(self, listener: Listener) -> bool:
        """Whether nobody here read one of ``listener``'s topics, so a burst may have gone by unseen."""
        return not self.live_topics.issuperset(listener.topics)

    def start_of(self, listener: Listener, cursor: int) -> int:
        """Return the seq a new live ``listener`` starts after: the cursor, or its topics' floors."""
        return max([cursor, *(self.floors.get(topic, 0) for topic in listener.topics)])

    def went_live(self, listener: Listener, position: int, cursor: int) -> None:
        """Note that ``listener`` takes live events after ``position``."""
        for topic in listener.topics:
            self.live_topics.add(topic)
            floor = self.floors.get(topic)
            if floor is not None and position < floor:
                # Read its events after ``position`` for this listener: the
                # catch-up that brought it here read that far and no further.
                if position > cursor:
                    self.floors[topic] = position
                else:
                    del self.floors[topic]

    def forget(self, topics: list[str]) -> None:
        """Forget those of ``topics`` no listener here listens to any more."""
        for topic in topics:
            if topic not in self.fanout.listeners:
                self.live_topics.discard(topic)
                self.floors.pop(topic, None)

    def passed(self, cursor: int) -> None:
        """The cursor reached ``cursor``: floors at or below it are read like any topic."""
        if self.floors:
            self.floors = {topic: seq for topic, seq in self.floors.items() if seq > cursor}

    def starts(self, topics: list[str], cursor: int) -> dict[int, list[str]]:
        """Return ``topics`` by the seq they are read after."""
        if not self.floors:
            return {cursor: topics}
        starts: dict[int, list[str]] = {}
        for topic in topics:
            starts.setdefault(self.floors.get(topic, cursor), []).append(topic)
        return starts

    async def recover(self, history: EventHistory, topics: list[str], cursor: int, head: EventId) -> bool:
        """
        The history, in ``head``'s epoch, could not answer a read of ``topics``
        after ``cursor``: reset the streams that lost events and set their
        topics' floors. Return False if no single topic explains it.
        """
        evicted = []
        for start, group in self.starts(topics, cursor).items():
            evicted += [(topic, start) for topic in await self._evicted(history, group, head.epoch, start)]
        if not evicted:
            return False
        lost: set[Listener] = set()
        for topic, start in evicted:
            lost.update(await self._behind(history, topic, head.epoch, start))
        frames: dict[int, bytes] = {}
        for listener in lost:
            # Never back: head() may answer from before a catch-up that took
            # this listener further.
            resume = max(head.seq, listener.position)
            frame = frames.get(resume)
            if frame is None:
                frame = frames[resume] = reset_frame(HISTORY_UNAVAILABLE, EventId(head.epoch, resume))
            listener.reset(frame, resume)
        for topic, _ in evicted:
            # Everyone live on it is now past what was evicted.
            floor = min((listener.position for listener in self._live(topic)), default=head.seq)
            if floor > cursor:
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

    async def _evicted(self, history: EventHistory, topics: list[str], epoch: str, start: int) -> list[str]:
        """Return which of ``topics`` the history cannot answer after ``start``: by halves."""
        after = EventId(epoch, start)
        if await self._answers(history, topics, after):
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
                if not await self._answers(history, piece, after):
                    failing.append(piece)
        return evicted

    async def _behind(self, history: EventHistory, topic: str, epoch: str, start: int) -> list[Listener]:
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
            if await self._answers(history, [topic], EventId(epoch, ahead[middle])):
                high = middle
            else:
                low = middle + 1
        answered = ahead[low] if low < len(ahead) else None
        return [listener for listener in listeners if answered is None or listener.position < answered]

    async def _answers(self, history: EventHistory, topics: list[str], after: EventId) -> bool:
        self.stats.history_reads += 1
        return await history.read(topics, after, 1) is not None
