"""
What a hub counts, for metrics.py: plain integers bumped on the paths where
things happen, read at scrape time. Nothing is counted per listener per event.
"""

from collections import Counter
from dataclasses import dataclass, field, fields

# The integer counters, with the help text metrics publish them with.
COUNTERS = {
    "events_delivered": "Events queued for a stream (one per stream).",
    "slow_clients_closed": "Streams closed because the client fell behind.",
    "replays": "Reconnects answered from history after Last-Event-ID.",
    "events_replayed": "Events sent from history on reconnect.",
    "layer_errors": "Channel layer calls that failed.",
    "bad_layer_messages": "Channel layer messages that could not be read and were ignored.",
    "history_reads": "History reads by the hubs for live fan-out.",
    "open_streams_reset": "Open streams sent stream_reset: the history lost events they had not seen.",
}


@dataclass
class HubStats:
    events_delivered: int = 0
    slow_clients_closed: int = 0
    replays: int = 0
    events_replayed: int = 0
    layer_errors: int = 0
    bad_layer_messages: int = 0
    history_reads: int = 0
    open_streams_reset: int = 0
    # Reconnects answered with stream_reset, by reason.
    resets: Counter[str] = field(default_factory=Counter)
    # Streams refused at open, by the setting whose limit they reached.
    refusals: Counter[str] = field(default_factory=Counter)

    def __iadd__(self, other: "HubStats") -> "HubStats":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self
