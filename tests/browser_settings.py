"""Settings of the servers the browser tests start: short heartbeats and retries, a stream count."""

import os

from project.settings import *  # noqa: F403
from project.settings import NOTIFICATIONS

ROOT_URLCONF = "tests.browser_urls"
# notifications.test maps to 127.0.0.1 in the test browser: a plain-http
# origin that is not localhost, where browsers offer no Web Locks.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "notifications.test"]
NOTIFICATIONS = {
    **NOTIFICATIONS,
    "EVENT_TYPES": [*NOTIFICATIONS["EVENT_TYPES"], "members_only"],
    # The demo's rules (task events: staff with the permission, else a
    # user's own runs on their private topic) plus the test-only type.
    "ACCESS": {**NOTIFICATIONS["ACCESS"], "members_only": "authenticated"},
    "HEARTBEAT": 2,
    "RETRY_MS": 500,
}
# In-memory unless a test names another backend or Redis (most servers here
# start without migrating).
if not os.environ.get("REDIS_URL"):
    NOTIFICATIONS["HISTORY_BACKEND"] = os.environ.get(
        "NOTIFICATIONS_HISTORY_BACKEND", "notifications.history.memory.InMemoryHistory"
    )
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
