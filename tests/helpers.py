"""Small helpers shared by the tests."""

import asyncio

from django.conf import settings
from django.test import override_settings


def notifications(**options) -> override_settings:
    """Override NOTIFICATIONS with the test settings plus ``options``."""
    return override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, **options})


async def eventually(predicate, rounds: int = 200) -> None:
    """Wait until ``predicate()`` holds, polling a bounded number of times."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still false after {rounds} polls: {predicate}")
