import json
import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from .lifecycle import manage


def project_database(monkeypatch, tmp_path) -> None:
    """Point this project's settings at a new, migrated SQLite file (its history lives there)."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "project.settings")
    monkeypatch.setenv("DJANGO_DB_PATH", str(tmp_path / "db.sqlite3"))
    manage(dict(os.environ), "migrate", "--noinput", "-v0")


def test_reports_a_clean_stop_of_this_project(monkeypatch, tmp_path):
    project_database(monkeypatch, tmp_path)
    out = StringIO()
    call_command(
        "clean_stop_check", "--streams", "50", "--events", "3", "--signal", "INT", "--json", stdout=out
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
    project_database(monkeypatch, tmp_path)
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
