"""
Who may subscribe to which topic.

Rules come from ``NOTIFICATIONS["ACCESS"]``, keyed by event type:
``"public"``, ``"authenticated"``, or a permission such as
``"project.view_taskrun"``; types without a rule follow
``NOTIFICATIONS["DEFAULT_ACCESS"]``. A private topic ``user.<pk>`` is open to
that user alone. Access is checked when a stream opens, so a user who logs
out or loses a permission stops receiving events at the next reconnect at
the latest.
"""

from django.http import HttpRequest

from .conf import setting
from .topics import topic_owner

PUBLIC = "public"
AUTHENTICATED = "authenticated"


def rule_for(topic: str) -> str:
    """Return the access rule of an event type."""
    return setting("ACCESS").get(topic, setting("DEFAULT_ACCESS"))


async def refusal(request: HttpRequest, topic: str) -> tuple[int, str] | None:
    """Return (status, reason) if the request may not subscribe to ``topic``."""
    owner = topic_owner(topic)
    rule = AUTHENTICATED if owner is not None else rule_for(topic)
    if rule == PUBLIC:
        return None
    user = await request.auser() if hasattr(request, "auser") else None
    if user is None or not user.is_authenticated:
        return 401, f"Log in to subscribe to {topic!r}."
    if owner is not None:
        if str(user.pk) != owner:
            return 403, f"Topic {topic!r} is another user's private topic."
        return None
    if rule != AUTHENTICATED and not await user.ahas_perm(rule):
        return 403, f"Subscribing to {topic!r} needs the {rule!r} permission."
    return None
