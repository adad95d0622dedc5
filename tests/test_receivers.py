"""Receivers of Django's task signals publish the life of each run, safely and after commit."""

import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import transaction
from django.tasks import TaskResultStatus
from django.test import AsyncClient, override_settings

from notifications.fanout import Listener
from notifications.hub import get_hub
from notifications.tasks import receivers
from notifications.tasks.events import SUMMARY_CHARS

from . import tasks
from .task_helpers import DATABASE_TASKS, count_published, notifications_with, published

pytestmark = pytest.mark.django_db(transaction=True)

LIFECYCLE = ["task_enqueued", "task_started", "task_completed"]


@pytest.fixture
def owner():
    return User.objects.create_user("owner")


def lifecycle_events():
    return published(*LIFECYCLE)


def test_successful_run_publishes_enqueued_started_completed(owner):
    result = tasks.add.enqueue(2, 3, enqueued_by=owner.pk)

    events = lifecycle_events()
    assert [event_type for event_type, _ in events] == LIFECYCLE
    assert [data["status"] for _, data in events] == ["queued", "running", "succeeded"]
    for _, data in events:
        assert data["task_id"] == result.id
        assert data["task_name"] == "add"
        assert data["enqueued_by"] == owner.pk
    completed = events[-1][1]
    assert completed["result"] == 5
    assert completed["duration"] == round((result.finished_at - result.started_at).total_seconds(), 3)
    assert completed["summary"] is None, "add() says nothing for people"
    assert "error" not in completed


def test_a_task_says_what_it_did_with_a_summary_in_its_dict_result(owner):
    tasks.echo.enqueue({"rows": 3, "summary": "Imported 3 rows."}, enqueued_by=owner.pk)
    tasks.echo.enqueue({"summary": "z" * 1000}, enqueued_by=owner.pk)
    tasks.echo.enqueue({"summary": 3}, enqueued_by=owner.pk)

    completions = [data for _, data in published("task_completed")]
    assert completions[0]["summary"] == "Imported 3 rows."
    assert completions[0]["result"] == {"rows": 3, "summary": "Imported 3 rows."}
    assert len(completions[1]["summary"]) == SUMMARY_CHARS, "cut short like results"
    assert completions[2]["summary"] is None, "only a string is a sentence"


def test_failed_run_publishes_error_class_and_message(owner):
    result = tasks.fail.enqueue("disk full on /var", enqueued_by=owner.pk)

    assert result.status == TaskResultStatus.FAILED
    _, completed = lifecycle_events()[-1]
    assert completed["status"] == "failed"
    assert completed["error"] == {"class": "builtins.ValueError", "message": "disk full on /var"}
    assert completed["summary"] == "disk full on /var"
    assert "result" not in completed


def test_long_result_and_message_are_cut_short(owner):
    tasks.echo.enqueue("x" * 1000, enqueued_by=owner.pk)
    tasks.fail.enqueue("y" * 1000, enqueued_by=owner.pk)

    completions = [data for _, data in published("task_completed")]
    assert len(completions[0]["result"]) == SUMMARY_CHARS
    assert completions[0]["result"].endswith("…")
    assert len(completions[1]["error"]["message"]) == SUMMARY_CHARS


def test_events_reach_the_enqueuer_private_topic_only(owner):
    other = User.objects.create_user("other")
    result = tasks.add.enqueue(1, 1, enqueued_by=owner.pk)

    private = published(f"user.{owner.pk}")
    assert [event_type for event_type, _ in private] == LIFECYCLE
    assert {data["task_id"] for _, data in private} == {result.id}
    assert published(f"user.{other.pk}") == []


def test_run_without_enqueuer_is_published_to_the_type_topics_only():
    tasks.add.enqueue(1, 1)

    assert [event_type for event_type, _ in lifecycle_events()] == LIFECYCLE
    assert count_published() == len(LIFECYCLE)


@pytest.mark.parametrize(
    "broken",
    [
        override_settings(NOTIFICATIONS=notifications_with(MAX_PAYLOAD_BYTES=10)),
        override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "nowhere.ChannelLayer"}}),
    ],
    ids=["payload-refused", "layer-broken"],
)
def test_failure_to_publish_never_fails_the_task(owner, caplog, broken):
    with broken, caplog.at_level(logging.WARNING, logger="notifications"):
        result = tasks.add.enqueue(2, 2, enqueued_by=owner.pk)

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 4
    failures = [record for record in caplog.records if record.name.startswith("notifications")]
    assert len(failures) == len(LIFECYCLE), "one warning per event, no more"
    assert all(record.levelno == logging.WARNING and record.exc_info is None for record in failures)
    assert [record.args[0] for record in failures] == LIFECYCLE
    assert all(record.args[1] == result.id for record in failures)


def test_failure_to_publish_after_commit_is_logged_once(owner, caplog):
    broken = override_settings(NOTIFICATIONS=notifications_with(MAX_PAYLOAD_BYTES=10))
    with broken, caplog.at_level(logging.DEBUG), transaction.atomic():
        result = tasks.add.enqueue(2, 2, enqueued_by=owner.pk)

    assert result.status == TaskResultStatus.SUCCESSFUL
    problems = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.args[0] for record in problems] == LIFECYCLE
    assert {record.name for record in problems} == {"notifications.tasks.events"}


def test_type_topic_still_gets_the_events_when_the_private_copy_fails(caplog):
    with caplog.at_level(logging.WARNING, logger="notifications"):
        result = tasks.add.enqueue(1, 1, enqueued_by="not a key!")

    assert [data["task_id"] for _, data in lifecycle_events()] == [result.id] * len(LIFECYCLE)
    assert len(caplog.records) == len(LIFECYCLE)
    assert "cannot name a topic" in caplog.records[0].getMessage()


def test_events_wait_for_the_transaction_to_commit(owner):
    with transaction.atomic():
        result = tasks.add.enqueue(2, 3, enqueued_by=owner.pk)
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert lifecycle_events() == []

    assert [data["task_id"] for _, data in lifecycle_events()] == [result.id] * len(LIFECYCLE)


def test_no_event_when_the_transaction_rolls_back(owner):
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.enqueue(2, 3, enqueued_by=owner.pk)
        raise RuntimeError("roll back")

    assert count_published() == 0


def test_event_of_a_rolled_back_savepoint_is_dropped(owner):
    with transaction.atomic():
        kept = tasks.add.enqueue(1, 1, enqueued_by=owner.pk)
        with pytest.raises(RuntimeError), transaction.atomic():
            tasks.add.enqueue(2, 2, enqueued_by=owner.pk)
            raise RuntimeError("roll back the inner block")

    assert {data["task_id"] for _, data in lifecycle_events()} == {kept.id}


@override_settings(TASKS=DATABASE_TASKS)
def test_database_backend_announces_a_queued_run_after_commit(owner):
    with transaction.atomic():
        result = tasks.add.enqueue(2, 3, enqueued_by=owner.pk)
        assert published("task_enqueued") == []

    assert result.status == TaskResultStatus.READY
    assert published("task_enqueued", "task_started") == [
        (
            "task_enqueued",
            {"task_id": result.id, "task_name": "add", "status": "queued", "enqueued_by": owner.pk},
        )
    ]


def test_connecting_again_does_not_publish_twice(owner):
    receivers.connect()
    receivers.connect()
    tasks.add.enqueue(1, 2, enqueued_by=owner.pk)

    assert [event_type for event_type, _ in lifecycle_events()] == LIFECYCLE


async def subscribe_as(user, path: str) -> tuple[int, bytes | None]:
    """Open ``path`` as ``user`` (None: anonymous); return the status and the first frame, if any."""
    client = AsyncClient()
    if user is not None:
        await client.aforce_login(user)
    response = await client.get(path)
    if response.status_code != 200:
        return response.status_code, None
    assert response["Content-Type"].startswith("text/event-stream")
    stream = aiter(response.streaming_content)
    try:
        return 200, await anext(stream)
    finally:
        await stream.aclose()


async def test_private_topic_is_owner_only():
    owner, other = await sync_to_async(
        lambda: (User.objects.create_user("a"), User.objects.create_user("b"))
    )()
    path = f"/sse/subscribe/user.{owner.pk}/"

    assert (await subscribe_as(None, path))[0] == 401
    assert (await subscribe_as(other, path))[0] == 403
    status, first_frame = await subscribe_as(owner, path)
    assert status == 200
    assert first_frame.startswith(b"retry:")


async def test_staff_with_the_permission_may_watch_every_run_and_others_may_not():
    staff, plain = await sync_to_async(_staff_and_plain_users)()
    path = "/sse/subscribe/?types=task_enqueued,task_started,task_progress,task_completed"

    statuses = [(await subscribe_as(user, path))[0] for user in (None, plain, staff)]

    assert statuses == [401, 403, 200]


def _staff_and_plain_users():
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_taskrun"))
    return staff, User.objects.create_user("plain")


async def test_owner_stream_receives_the_completion_live():
    owner = await sync_to_async(User.objects.create_user)("live")
    listener = Listener([f"user.{owner.pk}"], max_frames=100, max_bytes=2**20)
    await get_hub().add(listener)
    async for _ in get_hub().catch_up(listener, None):
        pass
    try:
        result = await asyncio.to_thread(tasks.add.enqueue, 20, 22, enqueued_by=owner.pk)
        async with asyncio.timeout(5):
            while b"event: task_completed" not in b"".join(listener.frames):
                await listener.wakeup.wait()
                listener.wakeup.clear()
        frames = listener.take().decode()
    finally:
        get_hub().remove(listener)

    assert frames.index("event: task_enqueued") < frames.index("event: task_started")
    assert frames.index("event: task_started") < frames.index("event: task_completed")
    assert f'"task_id":"{result.id}"' in frames
    assert '"result":42' in frames
