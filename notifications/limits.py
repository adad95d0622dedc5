"""
The publish rate limit: a token bucket per publish token, per process.

Stream limits (MAX_STREAMS, MAX_STREAMS_PER_USER) are counted by the hub,
which already knows every open stream of its process.
"""

import threading
import time

from django.core.signals import setting_changed


class RateLimiter:
    """Token buckets, one per key: ``rate`` a second, at most ``burst`` at once."""

    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def wait_time(self, key: str, rate: float, burst: int, now: float | None = None, cost: int = 1) -> float:
        """
        Take ``cost`` tokens (at most ``burst``) for ``key``; return 0 if
        granted, else seconds until they are free.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, since = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - since) * rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            self.refused += 1
            return (cost - tokens) / rate

    def reset(self) -> None:
        """Forget every bucket (settings changed)."""
        with self._lock:
            self._buckets.clear()


publish_limiter = RateLimiter()


def _reset_on_settings_change(setting: str, **kwargs) -> None:
    if setting == "NOTIFICATIONS":
        publish_limiter.reset()


setting_changed.connect(_reset_on_settings_change, dispatch_uid="notifications.limits")
