import json
import os
import resource
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from notifications.testing import ServerProcess, free_port

from .lifecycle import manage
from .support import notifications_settings

# A token the demo's settings read from the environment.
TOKEN = "stop-check-token-0123456789abcdefghij"


def migrated_database(tmp_path) -> str:
    """Return a new SQLite file with this project's tables (its history lives there)."""
    path = str(tmp_path / "db.sqlite3")
    manage({**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DB_PATH": path}, "migrate")
    return path


def test_reports_a_clean_stop_of_this_project(tmp_path):
    database = migrated_database(tmp_path)
    out = StringIO()
    call_command(
        "clean_stop_check",
        *("--streams", "50", "--events", "3", "--signal", "INT", "--json"),
        *("--env", "DJANGO_SETTINGS_MODULE=project.settings"),
        *("--env", f"DJANGO_DB_PATH={database}"),
        *("--env", f"NOTIFICATIONS_PUBLISH_TOKEN={TOKEN}", "--publish-token", TOKEN),
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["streams"] == 50
    assert report["ended_cleanly"] == 50
    assert report["farewells"] == 50
    assert report["events_lost"] == 0
    assert report["events_duplicated"] == 0
    assert report["exit_status"] == 0
    assert 0 < report["exit_cpu_seconds"] < 60
    assert report["traceback_lines"] == report["error_lines"] == 0


def test_table_shows_each_server_side_by_side(monkeypatch, tmp_path):
    # The servers inherit this environment; the token is this project's own setting.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "project.settings")
    monkeypatch.setenv("DJANGO_DB_PATH", migrated_database(tmp_path))
    monkeypatch.setenv("NOTIFICATIONS_PUBLISH_TOKEN", settings.NOTIFICATIONS["PUBLISH_TOKEN"])
    out = StringIO()
    call_command("clean_stop_check", "--streams", "10", "--events", "1", stdout=out, stderr=StringIO())
    lines = out.getvalue().splitlines()
    assert lines[0] == "|  | daphne (this project) |"
    assert "| streams ended cleanly | 10 |" in lines
    assert "| events lost | 0 |" in lines


@pytest.mark.parametrize("spec", ["no-equals-sign", "name=command-without-port", "=cmd {port}"])
def test_rejects_a_malformed_server_spec(spec):
    with pytest.raises(CommandError, match="is not valid. Use NAME=COMMAND"):
        call_command("clean_stop_check", "--server", spec, "--no-default")


def test_needs_a_server():
    with pytest.raises(CommandError, match="There is no server to check"):
        call_command("clean_stop_check", "--no-default")


def test_needs_a_publish_token():
    with notifications_settings(PUBLISH_TOKEN=None), pytest.raises(CommandError, match="no publish token"):
        call_command("clean_stop_check", "--streams", "1")


def test_rejects_a_malformed_env_option():
    with pytest.raises(CommandError, match="--env 'NO_VALUE' is not valid. Use NAME=VALUE."):
        call_command("clean_stop_check", "--env", "NO_VALUE")


def test_a_server_that_never_listens_is_ended(tmp_path):
    server = ServerProcess([sys.executable, "-c", "import signal; signal.pause()"], port=free_port())
    with pytest.raises(RuntimeError, match="did not listen"):
        server.start(tmp_path / "server.log", timeout=1)
    assert server.process.returncode is not None


def child(code: str) -> ServerProcess:
    """A ServerProcess around a Python child running ``code`` (no port: wait() needs none)."""
    server = ServerProcess([sys.executable, "-c", code], port=0)
    server.process = subprocess.Popen(server.argv, stdin=subprocess.PIPE)
    return server


@pytest.fixture
def fds_above_select_limit():
    """Hold enough descriptors open that the next is above select()'s 1,024, as 10,000 streams do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 2048), hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY)]
    try:
        while held[-1] < 1100:  # Bounded by RLIMIT_NOFILE: dup() fails beyond it.
            held.append(os.dup(held[0]))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("many_fds", [False, True], ids=["few-fds", "fds-above-1024"])
def test_waiting_for_a_server_returns_its_exit_status_once_it_exits(many_fds, request):
    if many_fds:
        request.getfixturevalue("fds_above_select_limit")
    server = child("import sys; sys.exit(int(sys.stdin.readline()))")
    try:
        assert server.wait(0.05) is None  # Still running: it waits for a line.
        server.process.stdin.write(b"3\n")
        server.process.stdin.close()
        assert server.wait(30) == 3
        assert server.wait(0) == 3  # Reaped already: the status is remembered.
    finally:
        server.process.kill()
        server.process.wait()
