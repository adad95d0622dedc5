"""Settings for server subprocesses in tests: the project plus the probe app."""

import os

from notifications import tasks
from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS, NOTIFICATIONS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.probe"]
ROOT_URLCONF = "tests.probe.urls"
NOTIFICATIONS = {**NOTIFICATIONS, "EVENT_TYPES": [*NOTIFICATIONS["EVENT_TYPES"], "alpha", "beta"]}
# In-memory history unless a test names another backend: most server tests
# start without migrating, and some count on a new epoch per process.
if not os.environ.get("REDIS_URL"):
    NOTIFICATIONS["HISTORY_BACKEND"] = os.environ.get(
        "NOTIFICATIONS_HISTORY_BACKEND", "notifications.history.memory.InMemoryHistory"
    )
if os.environ.get("NOTIFICATIONS_HEARTBEAT"):
    NOTIFICATIONS["HEARTBEAT"] = float(os.environ["NOTIFICATIONS_HEARTBEAT"])
if "NOTIFICATIONS_LISTEN_BACKLOG" in os.environ:
    NOTIFICATIONS["LISTEN_BACKLOG"] = int(os.environ["NOTIFICATIONS_LISTEN_BACKLOG"] or 0) or None
if os.environ.get("NOTIFICATIONS_MAX_UNSENT_BYTES"):
    NOTIFICATIONS["MAX_UNSENT_BYTES"] = int(os.environ["NOTIFICATIONS_MAX_UNSENT_BYTES"])

if not tasks.available():
    # Django 5.2: the demo's task pages stay out, as in tests/settings.py.
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ("project", "django_tasks_db")]
    NOTIFICATIONS.pop("EMBEDDED_TASK_WORKER", None)
    del TASKS  # noqa: F821
