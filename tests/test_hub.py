"""
The hub's group membership when the layer's calls take real time (channels_redis).

With the in-memory layer group_add and group_discard never wait, so joins and
leaves cannot interleave; over Redis they do.
"""

import asyncio

from notifications import apublish
from notifications.hub import get_hub
from notifications.streams import event_stream

from .support import wait_until


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
