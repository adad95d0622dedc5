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
