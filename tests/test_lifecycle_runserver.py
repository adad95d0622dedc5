"""
``manage.py runserver`` (Daphne's, with and without the autoreloader) stops
and reloads cleanly: streams get every event, the farewell and a terminated
response; after a reload clients catch up from Last-Event-ID with nothing
lost and nothing twice.
"""

import asyncio
import os
import signal

import pytest

from notifications.testing import free_port, open_streams, runserver

from .conftest import ROOT
from .lifecycle import change_until_reloaded, problem_lines, publish_http, publish_ids
from .support import wait_until

STREAMS = 50


@pytest.fixture
def reloadable(tmp_path, server_env):
    """Settings in a module of tmp_path, so touching it triggers a reload."""
    (tmp_path / "reload_settings.py").write_text("from tests.server_settings import *  # noqa: F403\n")
    env = {
        **server_env,
        "DJANGO_SETTINGS_MODULE": "reload_settings",
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{server_env['PYTHONPATH']}",
    }
    return tmp_path / "reload_settings.py", env


def start_runserver(tmp_path, env, reload=True):
    port = free_port()
    return runserver(port, reload=reload, env=env, cwd=ROOT).start(tmp_path / f"runserver-{port}.log")


def group_gone(server) -> bool:
    try:
        os.killpg(server.process.pid, 0)
    except ProcessLookupError:
        return True
    return False


async def wait_until_publish_works(port, timeout=20) -> None:
    for _ in range(int(timeout / 0.1)):
        try:
            status, _ = await asyncio.to_thread(publish_http, port, "beta", {"probe": True})
        except OSError:
            status = None
        if status == 202:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not come back")


async def test_autoreload_ends_streams_cleanly_and_clients_catch_up(tmp_path, reloadable):
    settings_file, env = reloadable
    server = start_runserver(tmp_path, env)
    try:
        clients = await open_streams(server.port, "/sse/subscribe/announcement/", STREAMS)
        before = await publish_ids(server.port, "announcement", 3)
        await change_until_reloaded(settings_file, clients[0])
        assert all(await asyncio.gather(*(client.read_to_end(20) for client in clients)))
        for client in clients:
            assert [event.id for event in client.of_type("announcement")] == before
            assert client.events[-1].event == "server_shutdown"
        await wait_until_publish_works(server.port)
        # Published after the reload, before the clients are back.
        missed = await publish_ids(server.port, "announcement", 2, start=3)
        resumed = await open_streams(
            server.port,
            "/sse/subscribe/announcement/",
            STREAMS,
            headers={"Last-Event-ID": clients[0].last_event_id},
        )
        after = await publish_ids(server.port, "announcement", 2, start=5)
        for client in resumed:
            await client.read_until(lambda c: len(c.of_type("announcement")) >= 4, 10)
            assert [event.id for event in client.of_type("announcement")] == missed + after
            assert client.of_type("stream_reset") == []
            client.close()
        assert server.process.poll() is None, "the reloader keeps serving"
        assert problem_lines(server.output()) == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    "how",
    ["ctrl-c", "sigterm-parent", "noreload-sigterm", "noreload-sigint"],
)
async def test_stop_ends_streams_cleanly_and_exits_zero(tmp_path, reloadable, how):
    _, env = reloadable
    server = start_runserver(tmp_path, env, reload=not how.startswith("noreload"))
    try:
        clients = await open_streams(server.port, "/sse/subscribe/?types=announcement,alpha", STREAMS)
        ids = await publish_ids(server.port, "alpha", 3)
        if how == "ctrl-c":
            server.signal(signal.SIGINT, group=True)
        elif how == "noreload-sigint":
            server.signal(signal.SIGINT)
        else:
            server.signal(signal.SIGTERM)
        assert all(await asyncio.gather(*(client.read_to_end(20) for client in clients)))
        for client in clients:
            assert [event.id for event in client.of_type("alpha")] == ids
            assert client.events[-1].event == "server_shutdown"
            assert client.retry == 2000
        assert await asyncio.to_thread(server.wait, 20) == 0
        # The reloader's child is gone with its parent; what is left would stay.
        await wait_until(lambda: group_gone(server), 5)
        output = server.output()
        assert problem_lines(output) == []
        assert "forced=0" in output
    finally:
        server.stop()


async def test_repeated_reloads_with_streams_open_never_hang(tmp_path, reloadable):
    settings_file, env = reloadable
    server = start_runserver(tmp_path, env)
    try:
        last_id = None
        for cycle in range(10):
            headers = {"Last-Event-ID": last_id} if last_id else {}
            clients = await open_streams(server.port, "/sse/subscribe/announcement/", 10, headers=headers)
            ids = await publish_ids(server.port, "announcement", 1, start=cycle)
            await change_until_reloaded(settings_file, clients[0])
            assert all(await asyncio.gather(*(client.read_to_end(20) for client in clients))), cycle
            for client in clients:
                assert [event.id for event in client.of_type("announcement")] == ids
            last_id = clients[0].last_event_id
            await wait_until_publish_works(server.port)
        assert server.output().count("Drained streams") == 10
        assert problem_lines(server.output()) == []
        server.signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 20) == 0
    finally:
        server.stop()
