class NotificationsError(Exception):
    """Base class for errors raised by the notifications app."""


class InvalidEventType(NotificationsError):
    """The event type is malformed or not registered."""


class InvalidEventId(NotificationsError):
    """The event id cannot be parsed."""


class PayloadError(NotificationsError):
    """The event data cannot be serialised or is too large."""


class PublishRefused(NotificationsError):
    """This process is shutting down and accepts no new events."""


class UndeliverableEvent(NotificationsError):
    """No process that serves streams would ever see the event."""


class BackendUnavailable(NotificationsError):
    """The channel layer or the history store cannot be reached right now."""


def describe(exc: BaseException) -> str:
    """Return ``exc`` as ``Type: message`` without a final period, for messages and logs."""
    message = str(exc).rstrip(". ")
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
