"""Helpers for the task tests: read what was published, from the real history."""

import json

from asgiref.sync import async_to_sync
from django.conf import settings

from notifications.history import EventId, get_history

from .support import stored_events


async def apublished(*topics: str) -> list[tuple[str, dict]]:
    """Return (event type, data) of every event on ``topics`` in history, oldest first."""
    history = get_history()
    head = await history.head()
    events = await stored_events(history, list(topics), EventId(head.epoch, 0))
    return [(event.type, json.loads(event.data)) for event in events]


def published(*topics: str) -> list[tuple[str, dict]]:
    """Sync twin of apublished()."""
    return async_to_sync(apublished)(*topics)


def count_published() -> int:
    """Return how many events the history holds, on every topic."""
    return async_to_sync(get_history().head)().seq


def notifications_with(**options) -> dict:
    """Return the test NOTIFICATIONS setting with ``options`` changed."""
    return {**settings.NOTIFICATIONS, **options}


DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
