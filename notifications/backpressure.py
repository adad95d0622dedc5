"""
Close the connection of a client that stops reading.

A server that writes whatever the application sends into its transport
buffer and never holds the application back (Daphne does so) lets a client
that stops reading (a suspended laptop, a stalled proxy) grow that buffer
without bound while its stream keeps up; the stream's bounded queue never
fills. Before each chunk of an event stream, the server adapter
(servers/daphne.py) asks too_far_behind() about the bytes the connection has
not sent yet and, past ``NOTIFICATIONS["MAX_UNSENT_BYTES"]``, aborts the
connection. The server then tells the application the client left, the
stream's ``finally`` runs, and the client catches up from history with
``Last-Event-ID`` when it comes back. Other responses (a large download to a
slow client) are left alone.
"""

import asyncio

from .conf import setting
from .hub import existing_hub


def too_far_behind(unsent_bytes: int) -> bool:
    """
    Return whether an event stream's connection holds too many unsent bytes
    to keep it open, and count it in the hub's stats if so. Call it from the
    serving event loop.
    """
    if unsent_bytes <= setting("MAX_UNSENT_BYTES"):
        return False
    hub = existing_hub(asyncio.get_running_loop())
    if hub is not None:
        hub.stats.slow_clients_closed += 1
    return True
