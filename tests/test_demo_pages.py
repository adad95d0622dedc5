"""
The demo's pages for ordinary users: a login page, starting a report from
/tasks/, the page of one run, and their task events on every page.
"""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from notifications.access import public_types
from notifications.tasks import progress, receivers
from project.models import Report, TaskRun
from project.tasks import generate_report

from .support import client_config
from .task_helpers import published

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def member():
    return User.objects.create_user("member", password="a-long-test-password-0123")


def test_an_ordinary_user_logs_in_on_the_sites_own_page_and_lands_on_their_runs(client, member):
    page = client.get("/tasks/", follow=True)

    assert page.redirect_chain == [("/accounts/login/?next=/tasks/", 302)]
    assert b'<label for="id_username">Username</label>' in page.content
    response = client.post(
        "/accounts/login/", {"username": "member", "password": "a-long-test-password-0123", "next": "/tasks/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/tasks/")
    assert client.get("/tasks/").status_code == 200


def test_a_wrong_password_is_reported_on_the_login_page(client, member):
    response = client.post("/accounts/login/", {"username": "member", "password": "nope"})

    assert response.status_code == 200
    assert b"did not match" in response.content


def test_logging_out_returns_home(client, member):
    client.force_login(member)

    response = client.post("/accounts/logout/")

    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/tasks/").status_code == 302


def test_an_ordinary_user_starts_a_report_and_sees_the_summary_of_their_run(client, member):
    report = Report.objects.create(title="Q3", sections=2)
    client.force_login(member)

    response = client.post(reverse("generate_report"), {"report": report.pk})

    assert (response.status_code, response["Location"]) == (302, "/tasks/")
    run = TaskRun.objects.get()  # Tests run tasks inline (ImmediateBackend).
    assert run.started_by == member and run.status == "succeeded"
    page = client.get(f"/tasks/{run.task_id}/").content.decode()
    assert "Report “Q3” is ready: 2 sections." in page
    assert '<progress max="100" value="100" aria-label="Progress of generate_report"></progress>' in page
    _, completed = published(f"user.{member.pk}")[-1]
    assert completed["summary"] == "Report “Q3” is ready: 2 sections."


def test_a_failed_run_says_why_on_its_page(client, member):
    report = Report.objects.create(title="Empty", sections=0)
    client.force_login(member)
    client.post(reverse("generate_report"), {"report": report.pk})

    run = TaskRun.objects.get()
    page = client.get(f"/tasks/{run.task_id}/").content.decode()

    assert run.status == "failed"
    assert "EmptyReport: Report &#x27;Empty&#x27; has no sections." in page


@pytest.mark.parametrize("sections", [2, 0], ids=["succeeds", "fails"])
def test_a_runs_row_says_what_each_of_its_events_says_when_the_event_goes_out(member, monkeypatch, sections):
    # A page rendered after an event was shown on the page before it (the
    # tab's position is past it) shows the run from its row: the row must
    # not be behind the event. The demo lists its app before notifications.
    report = Report.objects.create(title="Q3", sections=sections)
    seen = []

    def looking_first(publish):
        def publish_task_event(event_type, data):
            run = TaskRun.objects.filter(task_id=data["task_id"]).first()
            said = (data["status"], data.get("fraction"))
            row = run and (run.status, run.progress if "fraction" in data else None)
            seen.append((event_type, said, row))
            return publish(event_type, data)

        return publish_task_event

    for module in (receivers, progress):
        monkeypatch.setattr(module, "publish_task_event", looking_first(module.publish_task_event))

    generate_report.enqueue(report.pk, enqueued_by=member.pk)

    expected = ["task_enqueued", "task_started"] + ["task_progress"] * sections + ["task_completed"]
    assert [event_type for event_type, _, _ in seen] == expected
    for event_type, said, row in seen:
        assert row == said, f"{event_type} went out saying {said}, its run's row said {row}"


def test_the_page_of_someone_elses_run_is_not_found(client, member):
    other = User.objects.create_user("other")
    run = TaskRun.objects.create(task_id="abc", task_name="generate_report", started_by=other)
    client.force_login(member)

    assert client.get(f"/tasks/{run.task_id}/").status_code == 404


@pytest.mark.parametrize("path", ["/", "/live/", "/tasks/"])
def test_every_page_hears_the_users_own_task_events(client, member, path):
    client.force_login(member)

    html = client.get(path).content.decode()

    assert f"user.{member.pk}" in client_config(html)["topics"]
    assert 'id="task-runs-config"' in html
    assert "project/task_runs.js" in html


def test_anonymous_pages_get_public_events_only(client):
    html = client.get("/").content.decode()

    assert client_config(html)["topics"] == public_types()
    assert 'id="task-runs-config"' not in html
    assert 'href="/accounts/login/?next=/"' in html


def test_adduser_creates_an_ordinary_user_who_can_log_in(client, monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "a-long-test-password-0123")
    out = io.StringIO()

    call_command("adduser", "alice", stdout=out)

    alice = User.objects.get(username="alice")
    assert not alice.is_staff and not alice.is_superuser
    assert out.getvalue() == "User 'alice' created; they log in at /accounts/login/.\n"
    assert client.login(username="alice", password="a-long-test-password-0123")
    with pytest.raises(CommandError, match="A user named 'alice' exists already."):
        call_command("adduser", "alice")
