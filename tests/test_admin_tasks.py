"""
The demo: an admin action queues report generation in django-tasks-db and
answers at once; a worker runs it; the TaskRun row and the events follow.
"""

import json
import re
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.urls import reverse
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from notifications.access import public_types
from notifications.tasks import worker as task_worker
from notifications.tasks.worker import EmbeddedWorker
from project.models import Report, TaskRun

from .support import client_config
from .task_helpers import DATABASE_TASKS, notifications_with, published

pytestmark = [pytest.mark.django_db(transaction=True)]

REPORTS = reverse("admin:project_report_changelist")
TASK_RUNS = reverse("admin:project_taskrun_changelist")
TASK_TYPES = ["task_enqueued", "task_started", "task_progress", "task_completed"]


@pytest.fixture(autouse=True)
def database_tasks():
    with override_settings(TASKS=DATABASE_TASKS):
        yield


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("admin", password="pw")


@pytest.fixture
def report_editor():
    """Staff who may generate reports but not watch every task run."""
    user = User.objects.create_user("editor", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_report", "change_report"]))
    return user


def generate(client, user, *reports):
    client.force_login(user)
    return client.post(REPORTS, {"action": "generate", "_selected_action": [report.pk for report in reports]})


def run_queued_tasks():
    """Run every queued task with django-tasks-db's own worker loop, here, then return."""
    Worker(
        queue_names=["*"],
        excluded_queue_names=[],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
    ).run()


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def task_runs_config(html: str) -> dict:
    match = re.search(r'<script id="task-runs-config" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match[1])


def assert_one_client_for(html: str, topics: list[str], types: list[str]) -> None:
    """The page holds one notifications client, and no stream of its own."""
    assert html.count('id="notifications-config"') == 1
    assert "EventSource" not in html
    assert html.count("/static/project/task_runs.js") == 1
    config = client_config(html)
    assert (sorted(config["topics"]), sorted(config["types"])) == (sorted(topics), sorted(types))


def test_action_queues_the_task_and_answers_before_it_runs(client, admin_user):
    report = Report.objects.create(title="Q3", sections=2)

    response = generate(client, admin_user, report)

    assert response.status_code == 302
    assert response["Location"] == TASK_RUNS
    queued = DBTaskResult.objects.get()
    assert queued.status == "READY", "the request did not run the task"
    run = TaskRun.objects.get()
    assert (run.task_id, run.status, run.started_by) == (str(queued.id), "queued", admin_user)
    assert published(f"user.{admin_user.pk}") == [
        (
            "task_enqueued",
            {
                "task_id": run.task_id,
                "task_name": "generate_report",
                "status": "queued",
                "enqueued_by": admin_user.pk,
            },
        )
    ]
    assert Report.objects.get().generated_at is None


def test_worker_brings_the_run_to_its_final_state(client, admin_user):
    report = Report.objects.create(title="Q3", sections=3)
    generate(client, admin_user, report)

    run_queued_tasks()

    run = TaskRun.objects.get()
    assert run.status == "succeeded"
    assert run.progress == 1
    assert run.progress_message == "Section 3 of 3"
    assert run.result == {
        "report": report.pk,
        "title": "Q3",
        "sections": 3,
        "summary": "Report “Q3” is ready: 3 sections.",
    }
    assert run.started_at <= run.finished_at
    report.refresh_from_db()
    assert report.body.count("Section") == 3
    events = published(f"user.{admin_user.pk}")
    assert [event_type for event_type, _ in events][:2] == ["task_enqueued", "task_started"]
    assert events[-1] == (
        "task_completed",
        {
            "task_id": run.task_id,
            "task_name": "generate_report",
            "status": "succeeded",
            "enqueued_by": admin_user.pk,
            "duration": round((run.finished_at - run.started_at).total_seconds(), 3),
            "result": run.result,
            "summary": "Report “Q3” is ready: 3 sections.",
        },
    )
    assert published("task_completed") == [events[-1]], "staff watching every run get it too"


def test_failed_run_records_the_error(client, admin_user):
    empty = Report.objects.create(title="Empty", sections=0)
    generate(client, admin_user, empty)

    run_queued_tasks()

    run = TaskRun.objects.get()
    assert run.status == "failed"
    assert run.error == "EmptyReport: Report 'Empty' has no sections."
    _, completed = published(f"user.{admin_user.pk}")[-1]
    assert completed["error"] == {
        "class": "project.tasks.EmptyReport",
        "message": "Report 'Empty' has no sections.",
    }


def test_action_queues_one_run_per_report(client, admin_user):
    reports = [Report.objects.create(title=f"R{n}", sections=1) for n in range(3)]

    generate(client, admin_user, *reports)
    run_queued_tasks()

    assert sorted(run.result["title"] for run in TaskRun.objects.all()) == ["R0", "R1", "R2"]
    assert set(TaskRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_embedded_worker_runs_the_task_in_the_background_and_stops(client, admin_user):
    report = Report.objects.create(title="Q4", sections=2)
    worker = EmbeddedWorker("default")
    worker.start()
    try:
        response = generate(client, admin_user, report)
        assert response.status_code == 302
        assert wait_until(lambda: TaskRun.objects.filter(status="succeeded").exists())
    finally:
        stopped = worker.stop(timeout=5)

    assert stopped
    assert not worker.thread.is_alive()
    assert published("task_completed")[-1][1]["result"]["title"] == "Q4"


def test_embedded_worker_starts_once_and_only_when_configured():
    assert task_worker.start() is None
    with override_settings(NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER="default")):
        worker = task_worker.start()
        try:
            assert worker.thread.is_alive()
            assert task_worker.start() is worker
        finally:
            task_worker.stop(timeout=5)
    assert not worker.thread.is_alive()


def test_editor_without_the_run_permission_stays_on_the_reports(client, report_editor):
    report = Report.objects.create(title="Q3", sections=1)

    response = generate(client, report_editor, report)

    assert response.status_code == 302
    assert response["Location"] == REPORTS
    assert TaskRun.objects.get().started_by == report_editor


def test_task_run_list_renders_live_cells_and_watches_every_run(client, admin_user):
    Report.objects.create(title="Q3", sections=1)
    generate(client, admin_user, Report.objects.get())
    run = TaskRun.objects.get()

    html = client.get(TASK_RUNS).content.decode()

    for field in ["status", "progress", "outcome", "duration"]:
        assert f'data-task-id="{run.task_id}" data-field="{field}"' in html
    # Every run on the task types' topics, and the user's own private events.
    everything = [*public_types(), *TASK_TYPES]
    assert_one_client_for(html, topics=[*everything, f"user.{admin_user.pk}"], types=everything)
    assert task_runs_config(html) == {
        "types": TASK_TYPES,
        "completed": "task_completed",
        "userId": admin_user.pk,
        "username": "admin",
        "runUrl": "/tasks/TASK_ID/",
    }


def test_user_without_the_run_permission_listens_to_their_private_topic(client, report_editor):
    client.force_login(report_editor)

    html = client.get(REPORTS).content.decode()

    # The task types come on the private topic only: their own topics are guarded.
    assert_one_client_for(
        html, topics=[*public_types(), f"user.{report_editor.pk}"], types=[*public_types(), *TASK_TYPES]
    )


def test_admin_login_page_gets_public_events_only(client):
    html = client.get(reverse("admin:login")).content.decode()

    assert_one_client_for(html, topics=public_types(), types=public_types())


def test_task_runs_page_lists_every_run_for_staff_and_own_runs_for_others(client, admin_user, report_editor):
    Report.objects.create(title="Q3", sections=1)
    generate(client, admin_user, Report.objects.get())
    generate(client, report_editor, Report.objects.get())
    mine, theirs = TaskRun.objects.get(started_by=report_editor), TaskRun.objects.get(started_by=admin_user)

    client.force_login(admin_user)
    staff_page = client.get("/tasks/").content.decode()
    client.force_login(report_editor)
    editor_page = client.get("/tasks/").content.decode()

    assert mine.task_id in staff_page and theirs.task_id in staff_page
    assert mine.task_id in editor_page and theirs.task_id not in editor_page
    assert client_config(editor_page)["topics"] == [*public_types(), f"user.{report_editor.pk}"]
    assert "<tbody data-task-runs>" in editor_page


def test_task_runs_page_asks_anonymous_users_to_log_in(client):
    response = client.get("/tasks/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
