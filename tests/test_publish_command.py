"""
`manage.py publish`, and publish() refusing events that no server would see:
an in-memory history in a manage.py command that serves no streams.
"""

import asyncio
import io

import pytest
from django.core.management import CommandError, call_command

from notifications import process, publish
from notifications.exceptions import UndeliverableEvent
from notifications.history import EventId, get_history

from .support import notifications_settings

DATABASE_HISTORY = "notifications.history.database.DatabaseHistory"


@pytest.fixture(autouse=True)
def never_served(monkeypatch):
    """Start as a process that has served no stream (an earlier test's hub may have set the loop)."""
    monkeypatch.setattr(process, "serving_loop", None)


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("publish", *args, stdout=out)
    return out.getvalue().strip()


def test_publish_command_prints_the_id_of_the_stored_event():
    event_id = run_command("alpha", '{"text": "Hello"}')

    page = asyncio.run(get_history().read(["alpha"], EventId(EventId.parse(event_id).epoch, 0), 10))
    assert [(record.event.id, record.event.data) for record in page.records] == [
        (event_id, '{"text":"Hello"}')
    ]


def test_publish_command_sends_to_a_users_private_topic():
    event_id = run_command("alpha", "{}", "--user", "7")

    page = asyncio.run(get_history().read(["user.7"], EventId(EventId.parse(event_id).epoch, 0), 10))
    assert [record.event.id for record in page.records] == [event_id]


def test_publish_command_rejects_data_that_is_not_json():
    with pytest.raises(CommandError, match=r"The data '\{oops' is not JSON"):
        run_command("alpha", "{oops")


def test_publish_command_reports_an_unknown_type_as_a_command_error():
    with pytest.raises(CommandError, match="Event type 'nope' is not registered"):
        run_command("nope", "{}")


@pytest.mark.parametrize(
    "argv", [["manage.py", "shell"], ["/srv/app/manage.py", "db_worker"], ["django-admin", "publish"]]
)
def test_a_command_that_serves_no_streams_refuses_events_its_own_memory_would_keep(monkeypatch, argv):
    monkeypatch.setattr("sys.argv", [*argv, "-c", "..."])

    with pytest.raises(UndeliverableEvent) as caught:
        publish("alpha", {})

    assert str(caught.value) == (
        f"An event published from 'manage.py {argv[1]}' stays in this process: InMemoryHistory is not "
        "shared with the server. Set NOTIFICATIONS['HISTORY_BACKEND'] to "
        "'notifications.history.database.DatabaseHistory' (or RedisHistory), or POST the event to the "
        "server's /sse/publish/<type>/ endpoint."
    )
    assert asyncio.run(get_history().head()).seq == 0, "nothing was stored"


def test_the_refusal_reaches_the_command_line_as_a_command_error(monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "publish", "alpha", "{}"])

    with pytest.raises(CommandError, match="POST the event to the server's /sse/publish/<type>/ endpoint"):
        run_command("alpha", "{}")


@pytest.mark.parametrize(
    "argv",
    [["manage.py", "runserver"], ["manage.py", "test"], ["/venv/bin/daphne", "project.asgi:application"]],
)
def test_servers_and_test_runners_publish_with_the_in_memory_history(monkeypatch, argv):
    monkeypatch.setattr("sys.argv", argv)

    assert EventId.parse(publish("alpha", {})).seq == 1


def test_a_command_that_serves_streams_publishes(monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "custom_server"])
    monkeypatch.setattr(process, "serving_loop", asyncio.new_event_loop())
    try:
        assert process.never_serves() is False
    finally:
        process.serving_loop.close()


@pytest.mark.django_db(transaction=True)
def test_a_command_publishes_through_a_shared_history(monkeypatch):
    monkeypatch.setattr("sys.argv", ["manage.py", "shell"])

    with notifications_settings(HISTORY_BACKEND=DATABASE_HISTORY):
        event_id = publish("alpha", {"from": "shell"})
        head = asyncio.run(get_history().head())
        asyncio.run(get_history().close())

    assert str(head) == event_id
