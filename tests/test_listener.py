"""A listener wakes its stream once per batch of frames and bounds what it holds."""

import asyncio

from notifications.fanout import SLOW, Listener, Wakeup

from .support import started, wait_until


async def test_wakeup_wait_returns_at_once_when_already_set():
    wakeup = Wakeup()
    wakeup.set()

    async with asyncio.timeout(1):
        await wakeup.wait()


async def wait_blocks_until_set(wakeup: Wakeup) -> None:
    waiting = asyncio.ensure_future(wakeup.wait())
    await started(waiting)
    assert not waiting.done()

    wakeup.set()

    async with asyncio.timeout(1):
        await waiting


async def test_wakeup_wait_blocks_until_set():
    await wait_blocks_until_set(Wakeup())


async def test_wakeup_stays_usable_after_a_cancelled_wait():
    wakeup = Wakeup()
    waiting = asyncio.ensure_future(wakeup.wait())
    await started(waiting)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)

    await wait_blocks_until_set(wakeup)


def live_listener(max_frames: int = 10, max_bytes: int = 2**20, position: int = 0) -> Listener:
    listener = Listener(["alpha"], max_frames, max_bytes)
    listener.go_live(position)
    return listener


async def test_take_returns_frames_after_the_position_as_one_chunk_and_clears_the_wakeup():
    listener = live_listener(position=1)
    for seq in (1, 2, 3):
        assert listener.deliver(seq, f"frame{seq};".encode())
    assert listener.wakeup.is_set()

    assert listener.take() == b"frame2;frame3;"
    assert not listener.wakeup.is_set()
    assert listener.take() == b""


async def test_listener_over_its_limit_is_closed_as_slow_and_wakes_its_stream():
    listener = live_listener(max_frames=2)
    assert listener.deliver(1, b"a") and listener.deliver(2, b"b")
    listener.take()
    assert listener.deliver(3, b"c") and listener.deliver(4, b"d")

    assert not listener.deliver(5, b"e")
    assert listener.close_reason == SLOW
    assert listener.wakeup.is_set()
    assert not listener.deliver(6, b"f")


async def test_listener_over_its_byte_limit_is_closed_as_slow():
    listener = live_listener(max_bytes=10)
    assert listener.deliver(1, b"12345")
    assert listener.deliver(2, b"12345")

    assert not listener.deliver(3, b"1")
    assert listener.close_reason == SLOW


async def test_an_event_at_or_below_the_position_is_never_queued_again():
    listener = live_listener()
    assert listener.deliver(2, b"two;")
    assert listener.deliver(1, b"one;")
    assert listener.deliver(2, b"two;")
    assert listener.deliver(3, b"three;")

    assert listener.take() == b"two;three;"
    assert listener.position == 3


async def test_a_listener_still_catching_up_takes_nothing_live():
    listener = Listener(["alpha"], 10, 2**20)
    assert listener.deliver(1, b"one;")

    assert listener.frames == []
    assert not listener.wakeup.is_set()


def fanout_with(count: int, topic: str = "news"):
    from notifications.fanout import Fanout
    from notifications.stats import HubStats

    fanout = Fanout(HubStats())
    listeners = [Listener([topic], 100, 1 << 20) for _ in range(count)]
    for listener in listeners:
        listener.go_live(0)
        fanout.add(listener)
    return fanout, listeners


def record(seq: int, topic: str = "news"):
    from notifications.encoding import Event
    from notifications.history import Record

    return Record(seq, topic, Event("news", f'{{"n": {seq}}}', f"1-{seq}"))


async def test_an_event_is_queued_for_every_listener_at_once_and_woken_a_slice_per_turn():
    from notifications.fanout import WAKE_SLICE

    fanout, listeners = fanout_with(3 * WAKE_SLICE)
    woken_when_other_work_ran = []

    fanout.deliver([record(1)])
    # Queued in full, in order, before any stream runs...
    assert all(listener.frames and listener.position == 1 for listener in listeners)
    # ...but work queued after the delivery (a publish request, say) runs
    # before the last slice of streams is woken, not after all of them.
    asyncio.get_running_loop().call_soon(
        lambda: woken_when_other_work_ran.append(sum(listener.wakeup.is_set() for listener in listeners))
    )
    async with asyncio.timeout(1):
        while not all(listener.wakeup.is_set() for listener in listeners):
            await asyncio.sleep(0)

    assert woken_when_other_work_ran and woken_when_other_work_ran[0] < len(listeners)


async def test_a_listener_given_two_events_before_its_turn_is_woken_once_with_both():
    fanout, [listener] = fanout_with(1)

    fanout.deliver([record(1)])
    fanout.deliver([record(2)])
    async with asyncio.timeout(1):
        await listener.wakeup.wait()

    assert listener.take().count(b"id: ") == 2
    await asyncio.sleep(0)  # Nothing else is pending for it.
    assert not listener.wakeup.is_set()


async def test_only_frames_queued_are_counted_as_delivered_and_wake_a_stream():
    from notifications.fanout import Fanout
    from notifications.stats import HubStats

    fanout = Fanout(HubStats())
    catching_up = Listener(["news"], 100, 1 << 20)  # Still reading history by itself.
    has_it = Listener(["news"], 100, 1 << 20)
    has_it.go_live(1)
    fanout.add(catching_up)
    fanout.add(has_it)

    fanout.deliver([record(1)])
    await wait_until(lambda: not fanout.wakeups)  # Whatever wake-ups were due have run.

    assert (catching_up.frames, has_it.frames) == ([], [])
    assert fanout.stats.events_delivered == 0
    assert not catching_up.wakeup.is_set() and not has_it.wakeup.is_set()
