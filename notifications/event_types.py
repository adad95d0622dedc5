"""
Which event types exist.

Types come from ``NOTIFICATIONS["EVENT_TYPES"]`` and from register(). Each
type is served through its own channel-layer group, so names use only the
characters channel layers accept in group names.
"""

import re

from .conf import setting
from .exceptions import InvalidEventType

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_registered: set[str] = set()


def is_valid_name(name: object) -> bool:
    """Return whether ``name`` is a well-formed event type name."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def validate_name(name: object) -> str:
    """Return ``name`` if it is well formed; raise InvalidEventType if not."""
    if not is_valid_name(name):
        raise InvalidEventType(
            f"Event type {name!r} is not valid. Use 1 to 64 ASCII letters, "
            "digits, hyphens, underscores or periods."
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
    """Return ``name`` if it is a declared type; raise InvalidEventType if not."""
    validate_name(name)
    if name not in registered():
        raise InvalidEventType(
            f"Event type {name!r} is not registered. Add it to "
            "NOTIFICATIONS['EVENT_TYPES'] or call notifications.event_types.register()."
        )
    return name


def group_name(event_type: str) -> str:
    """Return the channel-layer group that carries ``event_type``."""
    return f"notifications.{event_type}"
