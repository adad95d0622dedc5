"""A redis-server of the test's own: 127.0.0.1 only, on a free port, stopped by the test."""

import itertools
import time
from pathlib import Path

import redis

from notifications.testing import ServerProcess, free_port


class RedisServer:
    """
    One redis-server process. Without ``persistent`` it keeps nothing on disk
    (``--save '' --appendonly no``), so a restart loses every key, as a Redis
    without persistence does in production. With ``persistent`` it writes an
    append-only file, fsynced on every write, in ``directory``.
    """

    def __init__(self, directory: Path, persistent: bool = False):
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: ServerProcess | None = None
        self._starts = itertools.count()
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--dir", str(self.directory), "--appendonly", "yes" if self.persistent else "no"]
        if self.persistent:
            argv += ["--appendfsync", "always"]
        self.process = ServerProcess(argv, self.port)
        self.process.start(self.directory / f"redis-{next(self._starts)}.log", timeout=10)
        return self

    def stop(self) -> None:
        """Shut the server down (SIGTERM: Redis finishes its writes and exits)."""
        if self.process is not None:
            self.process.stop()

    def restart(self, down_for: float = 0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def client(self) -> redis.Redis:
        """A synchronous client, for looking at the server from the test."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def clients_named(self, name: str) -> int:
        """Return how many connections carry the client name ``name``."""
        with self.client() as client:
            return sum(1 for entry in client.client_list() if entry.get("name") == name)

    def connected_clients(self) -> int:
        """Return how many clients are connected, not counting the one that asks."""
        with self.client() as client:
            return int(client.info("clients")["connected_clients"]) - 1


def use_redis(settings, url: str, history_url: str | None = None, **notifications) -> None:
    """
    Point this process's channel layer and history at the Redis at ``url``
    (the history at ``history_url`` if given), as REDIS_URL does for the project.
    """
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "protocol": 2}]},
        }
    }
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "HISTORY_BACKEND": "notifications.history.redis.RedisHistory",
        "HISTORY_OPTIONS": {"url": history_url or url},
        **notifications,
    }
