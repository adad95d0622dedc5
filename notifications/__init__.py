"""Live notifications for Django over Server-Sent Events."""

from collections.abc import Iterable
from typing import Any


def publish(event_type: str, data: Any, *, user: Any = None) -> str:
    """Publish an event from sync code and return its id (see publishing.py)."""
    from .publishing import publish

    return publish(event_type, data, user=user)


async def apublish(event_type: str, data: Any, *, user: Any = None) -> str:
    """Publish an event from async code and return its id (see publishing.py)."""
    from .publishing import apublish

    return await apublish(event_type, data, user=user)


def publish_many(events: Iterable[tuple]) -> list[str]:
    """Publish several events from sync code and return their ids (see publishing.py)."""
    from .publishing import publish_many

    return publish_many(events)


async def apublish_many(events: Iterable[tuple]) -> list[str]:
    """Publish several events from async code and return their ids (see publishing.py)."""
    from .publishing import apublish_many

    return await apublish_many(events)


__all__ = ["apublish", "apublish_many", "publish", "publish_many"]
