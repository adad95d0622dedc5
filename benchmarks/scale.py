"""How big a benchmark run is (streams, events and waits of each scenario), and how counts are shared out."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    capacity_streams: int
    fanout_streams: tuple[int, ...]
    fanout_events: int
    fanout_rate: float
    storm_clients: int
    storm_missed: int
    # Seconds to wait for the last events after the last publish.
    collect_timeout: float
    # Seconds at most to wait for the servers to go quiet after streams opened or closed.
    quiet_timeout: float = 10.0
    burst_streams: int = 1_000
    burst_events: int = 10_000
    # Seconds to wait for the burst's last deliveries after the last publish.
    burst_timeout: float = 600
    # Streams on runserver across an autoreload, and events published before it and after.
    reload_streams: int = 500
    reload_events: int = 20


FULL = Scale(10_000, (1_000, 5_000), 200, 50, 1_000, 20, 90)
QUICK = Scale(
    300,
    (100, 300),
    50,
    50,
    100,
    10,
    10,
    burst_streams=100,
    burst_events=1_000,
    burst_timeout=60,
    reload_streams=100,
)


def shares(count: int, parts: int) -> list[int]:
    """Split ``count`` into ``parts`` as even as can be, the larger shares first."""
    return [count // parts + (index < count % parts) for index in range(parts)]
