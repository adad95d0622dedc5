"""
The embedded defaults against a real `manage.py runserver`, no Redis: the
database history carries events from other processes (a shell, `manage.py
publish`, a `manage.py db_worker`) to the server's streams, a restart loses
nothing and resets no one, and where an event could not arrive (an
in-memory history) publishing from another process fails loudly.
"""

import json
import subprocess
import sys

import pytest

from notifications.testing import SSEClient, free_port, runserver

from .conftest import ROOT
from .lifecycle import manage
from .test_tasks_runserver import ADMIN_ID, QUICK, SETUP, Browser

DATABASE_HISTORY = "notifications.history.database.DatabaseHistory"
ANNOUNCEMENTS = "/sse/subscribe/announcement/"
# Seconds an event from another process may take: the hub polls the history
# every POLL_INTERVAL (1 s by default).
ARRIVAL = 10


@pytest.fixture
def env(server_env):
    environment = {
        **server_env,
        "NOTIFICATIONS_HISTORY_BACKEND": DATABASE_HISTORY,
        "DEMO_SECTION_SECONDS": "0.1",
    }
    manage(environment, "shell", "-c", SETUP)
    return environment


@pytest.fixture
def start(tmp_path):
    started = []

    def start_server(env: dict, name: str = "runserver", port: int | None = None):
        process = runserver(port or free_port(), env=env, cwd=ROOT)
        started.append(process.start(tmp_path / f"{name}-{len(started)}.log"))
        return started[-1]

    yield start_server
    for process in started:
        process.stop()


async def open_stream(port: int, path: str = ANNOUNCEMENTS, headers: dict | None = None) -> SSEClient:
    stream = SSEClient("127.0.0.1", port, path, headers or {})
    await stream.connect()
    assert stream.status == 200
    # The stream's opening frame carries its position: it is registered.
    assert await stream.read_until(lambda client: client.last_event_id is not None, 10)
    return stream


def texts(stream: SSEClient) -> list[str]:
    return [event.json()["text"] for event in stream.of_type("announcement")]


async def test_shell_publish_reaches_the_running_servers_streams(env, start):
    server = start(env)
    stream = await open_stream(server.port)

    shell = manage(
        env, "shell", "-c", "import notifications; notifications.publish('announcement', {'text': 'hi'})"
    )

    assert await stream.read_until(lambda client: texts(client) == ["hi"], ARRIVAL), server.output()
    assert shell.returncode == 0
    stream.close()


async def test_manage_py_publish_reaches_the_running_servers_streams(env, start):
    server = start(env)
    stream = await open_stream(server.port)

    published = manage(env, "publish", "announcement", '{"text": "from the command line"}')

    assert await stream.read_until(lambda client: client.of_type("announcement"), ARRIVAL), server.output()
    assert stream.of_type("announcement")[0].id == published.stdout.strip()
    assert texts(stream) == ["from the command line"]
    stream.close()


async def test_task_events_from_a_separate_db_worker_reach_the_users_stream(env, start, tmp_path):
    env = {**env, "TASK_WORKER": "separate"}
    server = start(env)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1"],
        env=env,
        cwd=ROOT,
        stdout=open(tmp_path / "worker.log", "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
    )
    try:
        browser = Browser(server.port)
        browser.log_in("admin", "pw")
        stream = await open_stream(server.port, f"/sse/subscribe/user.{ADMIN_ID}/", browser.cookie_header())

        browser.request("POST", "/admin/project/report/", {"action": "generate", "_selected_action": [QUICK]})

        done = await stream.read_until(lambda client: client.of_type("task_completed"), 30)
        assert done, server.output() + (tmp_path / "worker.log").read_text()
        assert [event.event for event in stream.events][:2] == ["task_enqueued", "task_started"]
        assert stream.of_type("task_completed")[0].json()["status"] == "succeeded"
        stream.close()
    finally:
        worker.terminate()
        worker.wait(15)


async def test_in_memory_history_refuses_publishing_from_another_process_clearly(server_env, start):
    # The demo's settings before this change: nothing arrives, so nothing may pretend to.
    env = {**server_env, "NOTIFICATIONS_HISTORY_BACKEND": "notifications.history.memory.InMemoryHistory"}
    server = start(env)
    stream = await open_stream(server.port)

    command = manage(env, "publish", "announcement", '{"text": "lost"}', check=False)
    shell = manage(
        env, "shell", "-c", "import notifications; notifications.publish('announcement', {})", check=False
    )

    assert command.returncode == 1 and command.stdout == ""
    assert command.stderr.strip() == (
        "CommandError: An event published from 'manage.py publish' stays in this process: "
        "InMemoryHistory is not shared with the server. Set NOTIFICATIONS['HISTORY_BACKEND'] to "
        "'notifications.history.database.DatabaseHistory' (or RedisHistory), or POST the event to the "
        "server's /sse/publish/<type>/ endpoint."
    )
    assert shell.returncode != 0
    assert (
        "notifications.exceptions.UndeliverableEvent: An event published from 'manage.py shell'"
        in shell.stderr
    )
    # The documented alternative works against the same server.
    status = publish_over_http(server.port, env, {"text": "over http"})
    assert status == 202
    assert await stream.read_until(lambda client: client.of_type("announcement"), ARRIVAL)
    assert texts(stream) == ["over http"]
    stream.close()


def publish_over_http(port: int, env: dict, data: dict) -> int:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            "/sse/publish/announcement/",
            json.dumps(data),
            {
                "Authorization": f"Bearer {env['NOTIFICATIONS_PUBLISH_TOKEN']}",
                "Content-Type": "application/json",
            },
        )
        return connection.getresponse().status
    finally:
        connection.close()


async def test_a_restart_without_redis_loses_nothing_and_resets_no_one(env, start):
    port = free_port()
    server = start(env, port=port)
    stream = await open_stream(port)
    assert publish_over_http(port, env, {"text": "before"}) == 202
    assert await stream.read_until(lambda client: texts(client) == ["before"], ARRIVAL)
    last_id = stream.of_type("announcement")[-1].id

    server.stop()
    await stream.read_to_end(10)
    stream.close()
    # Published while no server runs: stored in the database history.
    for text in ("while down 1", "while down 2"):
        manage(env, "publish", "announcement", json.dumps({"text": text}))
    start(env, name="restarted", port=port)
    resumed = SSEClient("127.0.0.1", port, ANNOUNCEMENTS, {"Last-Event-ID": last_id})
    await resumed.connect()

    assert await resumed.read_until(lambda client: len(texts(client)) == 2, ARRIVAL)
    assert texts(resumed) == ["while down 1", "while down 2"]
    assert resumed.of_type("stream_reset") == []
    resumed.close()
