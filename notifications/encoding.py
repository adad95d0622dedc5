"""
Encode events in the Server-Sent Events wire format.

This module knows nothing of Django: it turns an Event into the bytes a
browser's EventSource parses. See
https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
"""

import re
from dataclasses import dataclass

# CR, LF and CRLF all end a line in SSE, so any of them in a single-line
# field would let a value inject fields of its own. Browsers ignore an id
# containing NUL.
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\x00]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its type, its data (already JSON text) and its id."""

    type: str
    data: str
    id: str | None = None


def _check_field(name: str, value: str) -> None:
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"SSE field {name!r} must not contain CR, LF or NUL: {value!r}.")


def encode_event(event: Event) -> bytes:
    """Return the SSE frame for ``event``, ending with a blank line."""
    _check_field("event", event.type)
    lines = []
    if event.id is not None:
        _check_field("id", event.id)
        lines.append(f"id: {event.id}")
    lines.append(f"event: {event.type}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(event.data))
    return ("\n".join(lines) + "\n\n").encode()


def encode_retry(milliseconds: int) -> bytes:
    """Return a frame that sets the browser's reconnection delay."""
    return b"retry: %d\n\n" % int(milliseconds)


def encode_position(event_id: str) -> bytes:
    """Return a frame that sets the browser's last event id without firing an event."""
    _check_field("id", event_id)
    return f"id: {event_id}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """Return a comment frame; browsers ignore it, so it serves as keep-alive."""
    return "".join(f":{line}\n" for line in _LINE_BREAK.split(text)).encode() + b"\n"
