"""
Close the connection of a client that stops reading.

Daphne writes whatever the application sends into Twisted's transport
buffer and never holds the application back, so a client that stops reading
(a suspended laptop, a stalled proxy) makes that buffer grow without bound
while its stream keeps up; the stream's bounded queue never fills. Before
each chunk of an event stream this looks at the bytes the connection has not
sent yet, and past ``NOTIFICATIONS["MAX_UNSENT_BYTES"]`` aborts the
connection. Daphne then tells the application the client left, the stream's
``finally`` runs, and the client catches up from history with
``Last-Event-ID`` when it comes back. Other responses (a large download to a
slow client) are left alone.
"""

import asyncio
import logging

from .conf import setting
from .hub import existing_hub

logger = logging.getLogger(__name__)


def install() -> None:
    """Wrap daphne.server.Server.handle_reply (Daphne must be imported)."""
    from daphne.server import Server

    if getattr(Server.handle_reply, "checks_unsent_bytes", False):
        return
    original = Server.handle_reply

    async def handle_reply(self, protocol, message):
        if message["type"] == "http.response.body" and message.get("more_body") and _too_far_behind(protocol):
            hub = existing_hub(asyncio.get_running_loop())
            if hub is not None:
                hub.stats.slow_clients_closed += 1
            logger.debug("Closing a stream whose client stopped reading client=%s", protocol.client_addr)
            protocol.channel.transport.abortConnection()
            return
        await original(self, protocol, message)

    handle_reply.checks_unsent_bytes = True
    Server.handle_reply = handle_reply


def _too_far_behind(protocol) -> bool:
    transport = getattr(getattr(protocol, "channel", None), "transport", None)
    if transport is None or not _is_event_stream(protocol):
        return False
    # Twisted's FileDescriptor keeps unsent bytes in dataBuffer (from offset)
    # and in _tempDataBuffer (_tempDataLen bytes).
    unsent = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return unsent > setting("MAX_UNSENT_BYTES")


def _is_event_stream(protocol) -> bool:
    content_type = protocol.responseHeaders.getRawHeaders(b"content-type") or [b""]
    return content_type[0].startswith(b"text/event-stream")
