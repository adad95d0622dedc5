"""
The demo's SQLite database takes concurrent writers: the embedded task
worker writes (claims, progress, results) while requests write too.
"""

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings

from project.models import Report, TaskRun
from project.tasks import generate_report

from .task_helpers import DATABASE_TASKS

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def test_a_run_is_recorded_when_another_writer_commits_in_the_middle_of_its_transaction():
    # The receiver's update_or_create() reads the TaskRun, then inserts it. In
    # SQLite's default DEFERRED mode the read pins a snapshot: a write committed
    # by another connection before the insert (the embedded worker recording a
    # run's progress, say) makes the insert fail at once with "database is
    # locked", whatever the busy timeout. It failed a browser test in CI.
    owner = User.objects.create_user("owner")
    report = Report.objects.create(title="Q3", sections=1)
    other_writer = []

    def write_from_another_connection(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not other_writer and sql.startswith("SELECT") and '"project_taskrun"' in sql:
            # timeout=0: tell at once whether the write lock is free, never wait.
            with closing(sqlite3.connect(connection.settings_dict["NAME"], timeout=0)) as other:
                try:
                    with other:
                        other.execute("UPDATE project_report SET title = 'Q3 (edited)'")
                    other_writer.append("committed")
                except sqlite3.OperationalError as exc:
                    other_writer.append(str(exc))
        return result

    with override_settings(TASKS=DATABASE_TASKS), connection.execute_wrapper(write_from_another_connection):
        result = generate_report.enqueue(report.pk, enqueued_by=owner.pk)

    assert TaskRun.objects.get(task_id=result.id).status == TaskRun.Status.QUEUED
    # The transaction held the write lock from its start: the other writer
    # waits for its commit (refused here, as it may not wait).
    assert other_writer == ["database is locked"]


def test_the_demo_settings_pass_every_check_with_the_embedded_worker(tmp_path):
    # notifications.W012 among them: the embedded worker on SQLite.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "TASK_WORKER": "embedded"}
    env["DJANGO_DB_PATH"] = str(tmp_path / "db.sqlite3")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
