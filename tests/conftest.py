import os
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import channel_layers
from django.db import connections

from notifications import process
from notifications.history import reset_history

from .redis_server import RedisServer, use_redis

ROOT = Path(__file__).resolve().parent.parent
# Chromium and Daphne fixtures for the browser tests.
pytest_plugins = ["tests.browser"]


@pytest.fixture(autouse=True)
def fresh_state():
    """Give every test a new in-memory layer, history and process state."""
    channel_layers.backends.clear()
    reset_history()
    process.stopping = False
    yield
    channel_layers.backends.clear()
    reset_history()
    process.stopping = False
    # Async tests and stream requests run their ORM calls on asgiref's one
    # shared executor thread, whose connection would outlive the test and
    # fail the next test that may not use the database.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
async def asgi():
    """Open requests to the real ASGI application; disconnect them all at the end."""
    from .asgi_client import AsgiRequest

    requests = []

    def open_request(path: str, **options) -> AsgiRequest:
        request = AsgiRequest(path, **options)
        requests.append(request)
        return request

    yield open_request
    for request in requests:
        await request.disconnect()


@pytest.fixture
def server_env(tmp_path):
    """
    Environment for a server subprocess: the project with the probe app, its
    own SQLite file, a publish token, and the probe's log file.
    """
    return {
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "PROBE_LOG": str(tmp_path / "probe.log"),
        "NOTIFICATIONS_PUBLISH_TOKEN": "test-token-0123456789abcdef0123456789",
        # In-memory unless a test names its own Redis (see redis_server).
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server without persistence, for this test only."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def redis_settings(settings, redis_server):
    """Switch this process to the channels_redis layer and RedisHistory on ``redis_server``."""
    use_redis(settings, redis_server.url)
    return settings
