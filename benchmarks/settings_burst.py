"""
The demo project for the burst scenario: two more public event types, so
each stream listens to two, and a history that holds the whole burst, so
what is measured is delivery, not eviction (see README.md, "Benchmarks").
REDIS_URL puts the layer (capacity 1,000) and the history on Redis.
"""

from project.settings import *  # noqa: F403
from project.settings import NOTIFICATIONS

NOTIFICATIONS = {
    **NOTIFICATIONS,
    "EVENT_TYPES": [*NOTIFICATIONS["EVENT_TYPES"], "alpha", "beta"],
    "HISTORY_SIZE": 10_000,
}
