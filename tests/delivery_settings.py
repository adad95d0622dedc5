"""
Settings for the server processes of tests/test_delivery_e2e.py: the test
servers' settings, with a channel layer small enough that a burst overflows
it for sure, and a history that holds the whole burst.
"""

import os

from tests.server_settings import *  # noqa: F403
from tests.server_settings import CHANNEL_LAYERS, LOGGING, NOTIFICATIONS

# Messages one channel may hold: the hubs' wake-ups beyond it are dropped
# (channels-redis skips a member at capacity; the in-memory layer drops on
# ChannelFull), which the delivery guarantee must survive.
LAYER_CAPACITY = int(os.environ.get("DELIVERY_LAYER_CAPACITY", "10"))

_layer = CHANNEL_LAYERS["default"]
CHANNEL_LAYERS = {"default": {**_layer, "CONFIG": {**_layer.get("CONFIG", {}), "capacity": LAYER_CAPACITY}}}

NOTIFICATIONS = {
    **NOTIFICATIONS,
    # The guarantee holds while history holds the events: keep the whole
    # burst, so a stream moved while far behind still catches up in full.
    "HISTORY_SIZE": 10_000,
    # Publishers post as fast as they can; the rate limit would answer 429.
    "PUBLISH_RATE": None,
}

# channels-redis says at INFO when group_send skipped a member over capacity:
# the test checks that the burst did overflow the layer.
LOGGING = {
    **LOGGING,
    "loggers": {**LOGGING["loggers"], "channels_redis": {"handlers": ["console"], "level": "INFO"}},
}
