"""
The runserver adapter: Django's reloader internals are checked, the history
is handed to the next child through an unnamed file only our processes hold,
what comes back is validated, and a killed parent leaves nothing behind.
"""

import asyncio
import json
import logging
import os
import signal
import tempfile
from pathlib import Path

import pytest
from django.utils import autoreload

from notifications import apublish
from notifications.checks import check_servers
from notifications.history import get_history, reset_history
from notifications.servers import runserver
from notifications.testing import free_port, http_request, open_streams
from notifications.testing import runserver as runserver_process

from .conftest import ROOT
from .lifecycle import problem_lines, publish_ids
from .support import wait_until


def test_check_names_a_missing_reloader_internal_and_django_keeps_its_reloader(monkeypatch):
    def djangos_reloader(main_func, *args, **kwargs):
        return None

    monkeypatch.setattr(autoreload, "run_with_reloader", djangos_reloader)
    monkeypatch.delattr(autoreload, "restart_with_reloader")

    runserver.install()

    assert autoreload.run_with_reloader is djangos_reloader
    [warning] = check_servers()
    assert warning.id == "notifications.W202"
    assert "autoreload.restart_with_reloader" in warning.msg


@pytest.fixture
def handover(monkeypatch):
    """An unnamed file handed to this process as a reloader child gets it."""
    with tempfile.TemporaryFile() as file:
        monkeypatch.setenv(runserver.HANDOVER_FD_ENV, str(file.fileno()))
        yield file


async def published_history() -> dict:
    await apublish("announcement", {"n": 1})
    await apublish("alpha", {"n": 2})
    return get_history().dump()


async def test_history_handed_over_is_restored_with_ids_intact(handover):
    state = await published_history()
    runserver._hand_history_over()
    reset_history()

    runserver._take_history_over()

    assert get_history().dump() == state
    assert os.fstat(handover.fileno()).st_size == 0, "a handover is taken once"


def valid_state() -> dict:
    return {
        "epoch": "a1b2c3d4",
        "seq": 2,
        "evicted": {"alpha": 1},
        "events": {"announcement": [[2, "announcement", '{"n": 1}', "a1b2c3d4-2"]]},
    }


def with_changes(**changes) -> dict:
    return {**valid_state(), **changes}


@pytest.mark.parametrize(
    "state",
    [
        [],
        {"epoch": "a1b2c3d4"},
        with_changes(extra=1),
        with_changes(epoch=""),
        with_changes(epoch="a-b"),
        with_changes(epoch="x" * 65),
        with_changes(seq=-1),
        with_changes(seq=True),
        with_changes(seq="2"),
        with_changes(evicted={"alpha": 3}),
        with_changes(evicted={"bad topic": 1}),
        with_changes(events={"announcement": "not a list"}),
        with_changes(events={"announcement": [[2, "announcement", '{"n": 1}']]}),
        with_changes(events={"announcement": [[3, "announcement", "{}", "a1b2c3d4-3"]]}),
        with_changes(events={"announcement": [[2, "bad\nname", "{}", "a1b2c3d4-2"]]}),
        with_changes(events={"announcement": [[2, "announcement", 5, "a1b2c3d4-2"]]}),
        with_changes(events={"announcement": [[2, "announcement", "{}", "other-2"]]}),
        with_changes(events={"announcement": [[1, "announcement", "{}", "a1b2c3d4-1"]] * 1001}),
        with_changes(events={"announcement": [[2, "announcement", "x" * (64 * 1024 + 1), "a1b2c3d4-2"]]}),
    ],
)
def test_a_malformed_history_is_rejected(state):
    with pytest.raises(ValueError, match="is not valid"):
        runserver._check_history_state(state)


def test_a_well_formed_history_is_accepted():
    runserver._check_history_state(valid_state())
    private = {"user.42": [[2, "announcement", "{}", "a1b2c3d4-2"]]}
    runserver._check_history_state(with_changes(events=private))


@pytest.mark.parametrize("content", [b"not json", b'{"epoch": 1}', json.dumps(with_changes(seq=-1)).encode()])
async def test_garbage_handed_over_is_discarded_with_one_warning(handover, content, caplog):
    handover.write(content)
    handover.flush()
    fresh_epoch = get_history().epoch

    with caplog.at_level(logging.WARNING, logger="notifications"):
        runserver._take_history_over()

    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage().startswith("Discarding the history handed over by the previous runserver")
    assert get_history().epoch == fresh_epoch
    assert get_history().dump()["events"] == {}
    assert os.fstat(handover.fileno()).st_size == 0


def test_a_descriptor_that_is_not_open_is_ignored(monkeypatch):
    monkeypatch.setenv(runserver.HANDOVER_FD_ENV, "987654")
    runserver._take_history_over()
    runserver._hand_history_over()
    monkeypatch.setenv(runserver.HANDOVER_FD_ENV, "not a number")
    runserver._take_history_over()


def handover_target(pid: int) -> str:
    """Return what the descriptor through which ``pid`` hands history over points to."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    prefix = f"{runserver.HANDOVER_FD_ENV}=".encode()
    fd = next(line[len(prefix) :].decode() for line in environ if line.startswith(prefix))
    return os.readlink(f"/proc/{pid}/fd/{fd}")


def history_files() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if "history" in name}


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


async def test_killed_parent_leaves_no_file_and_no_process_and_streams_end_cleanly(tmp_path, server_env):
    port = free_port()
    before = history_files()
    server = runserver_process(port, env=server_env, cwd=ROOT).start(tmp_path / "runserver.log")
    try:
        clients = await open_streams(port, "/sse/subscribe/announcement/", 10)
        ids = await publish_ids(port, "announcement", 2)
        [child] = children(server.process.pid)
        assert handover_target(child).endswith("(deleted)"), "the history file has no name to open"
        assert history_files() == before

        server.process.send_signal(signal.SIGKILL)
        assert all(await asyncio.gather(*(client.read_to_end(20) for client in clients)))
        for client in clients:
            assert [event.id for event in client.of_type("announcement")] == ids
            assert client.events[-1].event == "server_shutdown"
        await wait_until(lambda: not Path(f"/proc/{child}").exists(), 10)
        assert not Path(f"/proc/{child}").exists(), "the child stops when its parent is gone"
        assert problem_lines(server.output()) == []
    finally:
        server.stop()


async def test_a_child_that_cannot_exit_leaves_anyway_with_one_error(tmp_path, server_env):
    env = {**server_env, "NOTIFICATIONS_DRAIN_TIMEOUT": "1"}
    port = free_port()
    server = runserver_process(port, env=env, cwd=ROOT).start(tmp_path / "runserver.log")
    try:
        [client] = await open_streams(port, "/sse/subscribe/announcement/", 1)
        started = await asyncio.to_thread(http_request, port, "GET", "/probe/stuck-thread/")
        assert started == (200, b"started\n")

        server.signal(signal.SIGTERM)

        assert await client.read_to_end(10)
        assert await asyncio.to_thread(server.wait, 30) == 0, server.output()
        errors = problem_lines(server.output())
        assert len(errors) == 1 and "did not exit within" in errors[0], server.output()
    finally:
        server.stop()
