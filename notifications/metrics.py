"""
Prometheus metrics, in the text exposition format.

Every figure is read at scrape time from where it is already kept: the hubs'
counters and listener sets, the publish counter, the rate limiter. Nothing
is counted per listener on the fan-out path; the hub adds the number of
listeners once per event.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import process
from .hub import all_hubs
from .limits import publish_limiter
from .publishing import published
from .stats import COUNTERS, HubStats
from .topics import topic_owner

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The label of every private topic: one series per user would leak user
# keys and grow without bound.
PRIVATE_TOPICS = "user.*"


def _by_label(
    family: type[Metric], name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> Metric:
    metric = family(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        metric.add_metric([value], count)
    return metric


class NotificationsCollector(Collector):
    """Collect the figures of every hub of this process."""

    def collect(self) -> Iterator[Metric]:
        hubs = list(all_hubs().values())
        stats = HubStats()
        by_topic: Counter[str] = Counter()
        for hub in hubs:
            stats += hub.stats
            for topic, listeners in list(hub.listeners.items()):
                by_topic[PRIVATE_TOPICS if topic_owner(topic) else topic] += len(listeners)

        yield GaugeMetricFamily(
            "notifications_streams_open", "Open event streams.", value=sum(hub.count for hub in hubs)
        )
        yield _by_label(
            GaugeMetricFamily,
            "notifications_topic_streams_open",
            "Open event streams per topic.",
            "topic",
            by_topic,
        )
        yield _by_label(
            CounterMetricFamily,
            "notifications_events_published",
            "Events published by this process.",
            "event_type",
            published,
        )
        for key, documentation in COUNTERS.items():
            yield CounterMetricFamily(f"notifications_{key}", documentation, value=getattr(stats, key))
        yield _by_label(
            CounterMetricFamily,
            "notifications_stream_resets",
            "Reconnects answered with stream_reset.",
            "reason",
            stats.resets,
        )
        yield _by_label(
            CounterMetricFamily,
            "notifications_streams_refused",
            "Streams refused by a limit, by setting.",
            "limit",
            stats.refusals,
        )
        yield CounterMetricFamily(
            "notifications_publish_rate_limited",
            "HTTP publish requests answered 429.",
            value=publish_limiter.refused,
        )
        yield GaugeMetricFamily(
            "notifications_draining",
            "1 while this process drains its streams.",
            value=process.stopping,
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
