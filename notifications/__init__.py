"""Live notifications for Django over Server-Sent Events."""

from typing import Any


def publish(event_type: str, data: Any, *, user: Any = None) -> str:
    """Publish an event from sync code and return its id (see publishing.py)."""
    from .publishing import publish

    return publish(event_type, data, user=user)


async def apublish(event_type: str, data: Any, *, user: Any = None) -> str:
    """Publish an event from async code and return its id (see publishing.py)."""
    from .publishing import apublish

    return await apublish(event_type, data, user=user)


__all__ = ["apublish", "publish"]
