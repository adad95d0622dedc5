"""
Prometheus metrics, in the text exposition format.

Every figure is read at scrape time from where it is already kept: the hubs'
counters and listener sets, the publish counter, the rate limiter. Nothing
is counted per listener on the fan-out path; the hub adds the number of
listeners once per event.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .hub import all_hubs
from .limits import publish_limiter
from .publishing import published
from .topics import topic_owner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The label of every private topic: one series per user would leak user
# keys and grow without bound.
PRIVATE_TOPICS = "user.*"


class NotificationsCollector(Collector):
    """Collect the figures of every hub of this process."""

    def collect(self) -> Iterator[Metric]:
        hubs = list(all_hubs().values())
        stats: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        by_topic: Counter[str] = Counter()
        for hub in hubs:
            stats.update(hub.stats)
            refusals.update(hub.refusals)
            for topic, listeners in list(hub.listeners.items()):
                by_topic[PRIVATE_TOPICS if topic_owner(topic) else topic] += len(listeners)

        yield GaugeMetricFamily(
            "notifications_streams_open", "Open event streams.", value=sum(hub.count for hub in hubs)
        )
        per_topic = GaugeMetricFamily(
            "notifications_topic_streams_open", "Open event streams per topic.", labels=["topic"]
        )
        for topic, count in sorted(by_topic.items()):
            per_topic.add_metric([topic], count)
        yield per_topic
        per_type = CounterMetricFamily(
            "notifications_events_published", "Events published by this process.", labels=["event_type"]
        )
        for event_type, count in sorted(published.items()):
            per_type.add_metric([event_type], count)
        yield per_type
        for name, key, documentation in [
            ("events_delivered", "events_delivered", "Events queued for a stream (one per stream)."),
            ("slow_clients_closed", "slow_clients_closed", "Streams closed because the client fell behind."),
            ("replays", "replays", "Reconnects answered from history after Last-Event-ID."),
            ("events_replayed", "events_replayed", "Events sent from history on reconnect."),
            ("layer_errors", "layer_errors", "Channel layer calls that failed."),
        ]:
            yield CounterMetricFamily(f"notifications_{name}", documentation, value=stats[key])
        resets = CounterMetricFamily(
            "notifications_stream_resets", "Reconnects answered with stream_reset.", labels=["reason"]
        )
        for key, count in sorted(stats.items()):
            if key.startswith("resets."):
                resets.add_metric([key.removeprefix("resets.")], count)
        yield resets
        refused = CounterMetricFamily(
            "notifications_streams_refused", "Streams refused by a limit, by setting.", labels=["limit"]
        )
        for limit, count in sorted(refusals.items()):
            refused.add_metric([limit], count)
        yield refused
        yield CounterMetricFamily(
            "notifications_publish_rate_limited",
            "HTTP publish requests answered 429.",
            value=publish_limiter.refused,
        )
        yield GaugeMetricFamily(
            "notifications_draining",
            "1 while this process drains its streams.",
            value=any(h.draining for h in hubs),
        )
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # Scraped from outside an event loop.
            pass
        else:
            yield GaugeMetricFamily(
                "notifications_event_loop_tasks",
                "Tasks alive on the serving event loop (leak detector).",
                value=tasks,
            )
        drains = [hub.drain_seconds for hub in hubs if hub.drain_seconds is not None]
        if drains:
            yield GaugeMetricFamily(
                "notifications_drain_seconds", "How long the last drain took.", value=max(drains)
            )


registry = CollectorRegistry(auto_describe=False)
registry.register(NotificationsCollector())
ProcessCollector(registry=registry)


def exposition() -> bytes:
    """Return every metric of this process in the Prometheus text format."""
    return generate_latest(registry)
