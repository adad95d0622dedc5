"""Settings for the daphne process of the soak test: the demo project, with every guard on."""

from project.settings import *  # noqa: F403
from project.settings import NOTIFICATIONS

METRICS_TOKEN = "soak-metrics-token-0123456789abcdefghij"

NOTIFICATIONS = {
    **NOTIFICATIONS,
    "ACCESS": {"task_completed": "authenticated"},
    "MAX_STREAMS_PER_USER": 3,
    # Every public type and the user's own topic: what the client tag subscribes to (check E008).
    "MAX_TYPES_PER_STREAM": 5,
    "MAX_STREAM_AGE": 3,
    "METRICS_ACCESS": "token",
    "METRICS_TOKEN": METRICS_TOKEN,
    # The soak is about streams; a task worker's own log lines are not.
    "EMBEDDED_TASK_WORKER": None,
}
