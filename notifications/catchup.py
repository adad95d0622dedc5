"""
Recovery: a stream that opens with a Last-Event-ID first catches up by
itself, page by page, and joins the live fan-out once its own read reached
the reader's cursor (reader.py).

When the history cannot answer (the position is of another epoch, or events
after it were evicted) the stream gets ``stream_reset`` with the position it
resumes from: never a silent gap.
"""

from collections.abc import AsyncIterator

from .encoding import encode_event, encode_position
from .exceptions import InvalidEventId
from .fanout import SLOW, Listener
from .history import EventId, Page
from .protocol import HISTORY_UNAVAILABLE, INVALID_ID, reset_frame
from .reader import PAGE_SIZE, HistoryReader

# Pages a reconnecting stream reads by itself before it gives up and ends
# (the client comes back from where it got to): the history grows faster
# than this stream can read it.
MAX_CATCH_UP_PAGES = 1000


async def catch_up(
    reader: HistoryReader, listener: Listener, last_event_id: str | None
) -> AsyncIterator[bytes]:
    """
    Yield what a stream resuming after ``last_event_id`` missed, then make
    its listener live. A new stream (no ``last_event_id``) gets the
    position it starts from; one that cannot be answered, ``stream_reset``.

    A listener joins the live fan-out only while the reader's lock is held:
    a live read in flight may have left its topics out, and would move the
    cursor past their events.
    """
    if last_event_id is None:
        # Without a position, a client whose connection drops before its
        # first event would come back without Last-Event-ID and miss what
        # was published meanwhile. A frame with an id and no data sets the
        # browser's last event id and fires no event.
        position = await reader.open(listener)
        yield encode_position(str(position))
        return
    try:
        after = EventId.parse(last_event_id)
    except InvalidEventId:
        async with reader.lock:
            frame = _reset(reader, listener, INVALID_ID)
        yield frame
        return
    for pages in range(MAX_CATCH_UP_PAGES):
        page = await reader.history.read(listener.topics, after, PAGE_SIZE)
        if listener.live or listener.close_reason is not None:
            return
        if page is None:
            head = await reader.history.head()
            # Never resume before what the client already has: that would
            # send it events again.
            has = after.seq if after.epoch == head.epoch == reader.epoch and after.seq <= head.seq else 0
            async with reader.lock:
                frame = None if listener.live else _reset(reader, listener, HISTORY_UNAVAILABLE, has)
            if frame is not None:
                yield frame
            return
        if not pages:
            reader.stats.replays += 1
        if len(page.records) < PAGE_SIZE and page.through.epoch == reader.epoch:
            page = await _join_live(reader, listener, page)
        elif len(page.records) < PAGE_SIZE:
            # The history started a new epoch that the reader has not read
            # yet: its next read resets the live listeners and moves to that
            # epoch; this one reads on and joins it.
            await reader.pump()
        if page.records:
            reader.stats.events_replayed += len(page.records)
            yield b"".join(encode_event(record.event) for record in page.records)
        if listener.live or listener.close_reason is not None:
            return
        after = page.through
    # Let the client come back from where it got to.
    listener.close(SLOW)


async def _join_live(reader: HistoryReader, listener: Listener, page: Page) -> Page:
    """
    Make ``listener`` live after ``page``, a complete read, if nothing
    between it and the reader's cursor is missing; return what it must
    still send.
    """
    async with reader.lock:
        if listener.live or listener.close_reason is not None:
            return page
        if page.through.seq < reader.cursor:
            # The live read went further while this one ran: read up to the
            # cursor while it cannot move.
            rest = await reader.history.read(listener.topics, page.through, PAGE_SIZE)
            if rest is None or len(rest.records) == PAGE_SIZE:
                return page  # Read on, or reset, without the lock.
            page = Page(page.records + rest.records, rest.through)
        reader.go_live(listener, page.through.seq)
        return page


def _reset(reader: HistoryReader, listener: Listener, reason: str, has: int = 0) -> bytes:
    # Caller holds reader.lock.
    reader.stats.resets[reason] += 1
    reader.go_live(listener, max(reader.cursor, has))
    return reset_frame(reason, EventId(reader.epoch, listener.position))
