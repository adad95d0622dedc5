"""Where recent events live, for Last-Event-ID catch-up."""

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import setting
from .base import EventHistory, EventId, Page, Record

__all__ = ["EventHistory", "EventId", "Page", "Record", "get_history", "reset_history"]

_history: EventHistory | None = None


def get_history() -> EventHistory:
    """Return this process's history backend, built from settings once."""
    global _history
    if _history is None:
        backend = import_string(setting("HISTORY_BACKEND"))
        _history = backend(setting("HISTORY_SIZE"), **setting("HISTORY_OPTIONS"))
    return _history


def reset_history(**kwargs) -> None:
    """Forget the history backend so the next get_history() builds a new one."""
    global _history
    _history = None


def _reset_on_settings_change(setting: str, **kwargs) -> None:
    if setting == "NOTIFICATIONS":
        reset_history()


setting_changed.connect(_reset_on_settings_change, dispatch_uid="notifications.history")
