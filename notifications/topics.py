"""
What a stream can subscribe to.

A topic is either an event type, declared in ``NOTIFICATIONS["EVENT_TYPES"]``
or with register(), or a user's private topic ``user.<pk>``, which carries
events of any declared type to that user alone. Each topic is served through
its own channel-layer group, so names use only characters channel layers
accept in group names.
"""

import re

from .conf import setting
from .exceptions import InvalidEventType

USER_PREFIX = "user."
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_USER_TOPIC = re.compile(r"user\.([A-Za-z0-9_\-]{1,59})")
_registered: set[str] = set()


def is_valid_name(name: object) -> bool:
    """Return whether ``name`` is a well-formed event type name."""
    # The prefix is reserved: a type named like a private topic would share
    # its group with that user's events.
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and not name.startswith(USER_PREFIX)


def validate_name(name: object) -> str:
    """Return ``name`` if it is a well-formed event type; raise InvalidEventType if not."""
    if not is_valid_name(name):
        raise InvalidEventType(
            f"Event type {name!r} is not valid. Use 1 to 64 ASCII letters, digits, "
            f"hyphens, underscores or periods, not starting with {USER_PREFIX!r}."
        )
    return name


def register(name: str) -> str:
    """Declare ``name`` as an event type from code; return it."""
    _registered.add(validate_name(name))
    return name


def unregister(name: str) -> None:
    """Forget a type registered from code (settings are not affected)."""
    _registered.discard(name)


def registered() -> frozenset[str]:
    """Return every declared event type."""
    return frozenset(setting("EVENT_TYPES")) | _registered


def check_registered(name: object) -> str:
    """Return ``name`` if it is a declared event type; raise InvalidEventType if not."""
    validate_name(name)
    if name not in registered():
        raise InvalidEventType(
            f"Event type {name!r} is not registered. Add it to "
            "NOTIFICATIONS['EVENT_TYPES'] or call notifications.topics.register()."
        )
    return name


def user_topic(user_or_pk: object) -> str:
    """Return the private topic of a user (or of a user's primary key)."""
    pk = getattr(user_or_pk, "pk", user_or_pk)
    topic = f"{USER_PREFIX}{pk}"
    # An anonymous or unsaved user has pk None, which must not become "user.None".
    if pk is None or _USER_TOPIC.fullmatch(topic) is None:
        raise InvalidEventType(f"User key {pk!r} cannot name a topic. Use letters, digits, '-' or '_'.")
    return topic


def topic_owner(topic: str) -> str | None:
    """Return the user key of a private topic, or None for an event type."""
    match = _USER_TOPIC.fullmatch(topic)
    return match[1] if match else None


def check_topic(name: object) -> str:
    """Return ``name`` if streams may subscribe to it; raise InvalidEventType if not."""
    if isinstance(name, str) and topic_owner(name) is not None:
        return name
    return check_registered(name)


def group_name(topic: str) -> str:
    """Return the channel-layer group that carries ``topic``."""
    return f"notifications.{topic}"
