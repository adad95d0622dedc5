"""
The hub's group membership when the layer's calls take real time or fail.

With the in-memory layer group_add and group_discard never wait, so joins and
leaves cannot interleave; over Redis they do, and they fail while Redis
restarts. The first test runs on channels_redis; the others wrap the in-memory
layer to hold up or fail a call exactly where the race is.
"""

import asyncio

from channels.layers import get_channel_layer

from notifications import apublish
from notifications.hub import Hub, get_hub
from notifications.streams import event_stream
from notifications.topics import group_name

from .support import started, wait_until


class ControlledLayer:
    """
    The in-memory layer, except that the next group_add or group_discard of
    ``held_group`` waits for ``release`` (Redis taking its time), and the
    next ``failing_discards`` group_discards fail (Redis restarting).
    """

    def __init__(self):
        self.inner = get_channel_layer()
        self.held_group: str | None = None
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.failing_discards = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def _hold(self, group: str) -> None:
        if group == self.held_group:
            self.held_group = None
            self.holding.set()
            await self.release.wait()

    async def group_add(self, group: str, channel: str) -> None:
        await self._hold(group)
        await self.inner.group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self._hold(group)
        if self.failing_discards:
            self.failing_discards -= 1
            raise ConnectionError("injected group_discard failure")
        await self.inner.group_discard(group, channel)

    def members(self, topic: str) -> set[str]:
        return set(self.inner.groups.get(group_name(topic), {}))


async def test_stream_opened_while_the_last_one_leaves_still_gets_events(redis_settings):
    """A page reload: the only stream on a type ends and a new one opens at once."""
    hub = get_hub()
    old = event_stream(["alpha"], None)
    await anext(old)

    await old.aclose()
    # Let the hub start leaving the group; it now waits on Redis.
    await asyncio.sleep(0)
    assert hub.subscription.busy
    new = event_stream(["alpha"], None)
    await anext(new)
    await wait_until(lambda: not hub.subscription.busy)
    event_id = await apublish("alpha", "after reload")

    frame = await asyncio.wait_for(anext(new), 5)
    assert f"id: {event_id}\n".encode() in frame
    await new.aclose()
    await wait_until(lambda: hub.subscription.channel is None)
    await hub.subscription.layer.close_pools()


async def test_a_group_refresh_during_a_join_does_not_leave_the_joined_group():
    """
    The periodic refresh (or the rejoin after a failed receive) starts while
    a new stream's group is being joined: the process stays in that group, or
    the stream would hear of its events only from the poll.
    """
    layer = ControlledLayer()
    hub = Hub(layer=layer, poll_interval=60)
    alpha = event_stream(["alpha"], None, hub=hub)
    await anext(alpha)
    layer.held_group = group_name("beta")
    beta = event_stream(["beta"], None, hub=hub)
    opening = asyncio.ensure_future(anext(beta))
    await asyncio.wait_for(layer.holding.wait(), 5)
    refresh = asyncio.ensure_future(hub.subscription._join_again())
    await started(refresh)  # It now waits for the join or leave to finish.
    layer.release.set()
    try:
        await asyncio.wait_for(opening, 5)
        assert await asyncio.wait_for(refresh, 5) is None
        channel = hub.subscription.channel
        assert hub.subscription.joined == {"alpha", "beta"}
        assert layer.members("beta") == {channel}
        # Woken by the layer: the poll is a minute away.
        event_id = await apublish("beta", {"n": 1})
        assert f"id: {event_id}\n".encode() in await asyncio.wait_for(anext(beta), 5)
    finally:
        await alpha.aclose()
        await beta.aclose()
        await hub.close()


async def test_a_group_refresh_during_a_leave_does_not_join_the_group_again():
    """The converse: the refresh starts while the last stream on a topic is leaving its group."""
    layer = ControlledLayer()
    hub = Hub(layer=layer, poll_interval=60)
    alpha, beta = event_stream(["alpha"], None, hub=hub), event_stream(["beta"], None, hub=hub)
    await anext(alpha)
    await anext(beta)
    layer.held_group = group_name("beta")
    await beta.aclose()
    await asyncio.wait_for(layer.holding.wait(), 5)
    refresh = asyncio.ensure_future(hub.subscription._join_again())
    await started(refresh)  # It now waits for the join or leave to finish.
    layer.release.set()
    try:
        assert await asyncio.wait_for(refresh, 5) is None
        await wait_until(lambda: not hub.subscription.busy)
        assert hub.subscription.joined == {"alpha"}
        assert layer.members("beta") == set(), "left, not joined again"
    finally:
        await alpha.aclose()
        await hub.close()


async def test_a_group_whose_leave_failed_is_left_later_not_joined_again():
    """
    The leave of a group fails (Redis restarting): the next refresh leaves it,
    instead of joining it again every time.
    """
    layer = ControlledLayer()
    hub = Hub(layer=layer, poll_interval=60)
    alpha, beta = event_stream(["alpha"], None, hub=hub), event_stream(["beta"], None, hub=hub)
    await anext(alpha)
    await anext(beta)
    channel = hub.subscription.channel
    layer.failing_discards = 1
    await alpha.aclose()
    await wait_until(lambda: not layer.failing_discards and not hub.subscription.busy)
    assert layer.members("alpha") == {channel}, "the leave failed"
    try:
        assert await hub.subscription._join_again() is None
        assert hub.subscription.joined == {"beta"}
        assert layer.members("alpha") == set()
        assert layer.members("beta") == {channel}
    finally:
        await beta.aclose()
        await hub.close()


async def test_the_last_group_whose_leave_failed_is_left_by_the_next_refresh():
    """With no stream left, the refresh leaves the group and stops the subscription."""
    layer = ControlledLayer()
    hub = Hub(layer=layer, poll_interval=60)
    alpha = event_stream(["alpha"], None, hub=hub)
    await anext(alpha)
    layer.failing_discards = 1
    await alpha.aclose()
    await wait_until(lambda: not layer.failing_discards and not hub.subscription.busy)
    try:
        assert await hub.subscription._join_again() is None
        assert hub.subscription.joined == set()
        assert layer.members("alpha") == set()
        assert hub.subscription.channel is None
    finally:
        await hub.close()
