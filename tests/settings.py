import os
import tempfile

from notifications import tasks
from project.settings import *  # noqa: F403

NOTIFICATIONS = {
    "EVENT_TYPES": ["announcement", "task_started", "task_progress", "task_completed", "alpha", "beta"],
    "PUBLISH_TOKEN": "test-token-0123456789abcdef0123456789",
    # The project's rules for task events (NOTIFICATIONS is still the project's here).
    "ACCESS": NOTIFICATIONS["ACCESS"],  # noqa: F405
}
# Tasks run inline unless a test picks another backend.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
DEMO_SECTION_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests that need Redis start their own; never the one REDIS_URL may name here.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# A file, not SQLite's in-memory default: stream requests run their ORM calls
# on asgiref's one shared executor thread, and an in-memory connection there
# cannot be closed: conftest.fresh_state closes it after every test.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": os.path.join(tempfile.gettempdir(), f"notifications-test-{os.getpid()}.sqlite3")
}

if not tasks.available():
    # Django 5.2 (the version matrix): no django.tasks, so neither the demo's
    # app (task runs and reports) nor django-tasks-db; the notifications app
    # runs with its task events off.
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in ("project", "django_tasks_db")]  # noqa: F405
    ROOT_URLCONF = "tests.core_urls"
    del TASKS
    # Rules only for types that exist: task_enqueued is declared by the task receivers.
    NOTIFICATIONS["ACCESS"] = {
        event_type: rule
        for event_type, rule in NOTIFICATIONS["ACCESS"].items()
        if event_type in NOTIFICATIONS["EVENT_TYPES"]
    }
