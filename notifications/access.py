"""
Who may subscribe to which topic.

Rules come from ``NOTIFICATIONS["ACCESS"]``, keyed by event type:
``"public"``, ``"authenticated"``, or a permission such as
``"project.view_taskrun"``; types without a rule follow
``NOTIFICATIONS["DEFAULT_ACCESS"]``. A private topic ``user.<pk>`` is open to
that user alone.

Access is checked when a stream opens. How long an open stream outlives a
change of access:

- logout in the process that serves the stream: at once; the stream ends
  with ``stream_expired`` and its queued events are dropped;
- logout in another process, a removed permission or a deactivated user: at
  the stream's next reconnect, at most ``NOTIFICATIONS["MAX_STREAM_AGE"]``
  seconds later (and never, if it is None).
"""

import asyncio
from typing import Any

from django.http import HttpRequest

from .conf import setting
from .fanout import REVOKED
from .hub import all_hubs
from .topics import registered, topic_owner

PUBLIC = "public"
AUTHENTICATED = "authenticated"


def rule_for(topic: str) -> str:
    """Return the access rule of an event type."""
    return setting("ACCESS").get(topic, setting("DEFAULT_ACCESS"))


def public_types() -> list[str]:
    """Return every declared event type that anyone may subscribe to, sorted."""
    return sorted(name for name in registered() if rule_for(name) == PUBLIC)


async def authenticated_user(request: HttpRequest) -> Any:
    """Return the request's user if authenticated, else None (also without auth middleware)."""
    user = await request.auser() if hasattr(request, "auser") else None
    if user is None or not user.is_authenticated:
        return None
    return user


async def refusal(request: HttpRequest, topic: str) -> tuple[int, str] | None:
    """Return (status, reason) if the request may not subscribe to ``topic``."""
    owner = topic_owner(topic)
    rule = AUTHENTICATED if owner is not None else rule_for(topic)
    if rule == PUBLIC:
        return None
    user = await authenticated_user(request)
    if user is None:
        return 401, f"Log in to subscribe to {topic!r}."
    if owner is not None:
        if str(user.pk) != owner:
            return 403, f"Topic {topic!r} is another user's private topic."
        return None
    if rule != AUTHENTICATED and not await user.ahas_perm(rule):
        return 403, f"Subscribing to {topic!r} needs the {rule!r} permission."
    return None


def close_streams_on_logout(
    sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any
) -> None:
    """Receive user_logged_out: end the user's streams served by this process."""
    if user is None or user.pk is None:
        return
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop, hub in all_hubs().items():
        if loop is current:
            hub.close_user(str(user.pk), REVOKED)
        elif not loop.is_closed():
            # Sync logout views run in a worker thread.
            loop.call_soon_threadsafe(hub.close_user, str(user.pk), REVOKED)
