"""A task reports progress with one call; events are throttled per run."""

import pytest
from django.contrib.auth.models import User
from django.tasks import TaskResultStatus
from django.test import override_settings

from notifications.tasks.progress import current_run, progress_reported, report_progress

from . import tasks
from .task_helpers import notifications_with, published

pytestmark = pytest.mark.django_db(transaction=True)


def progress_events(*topics):
    return [data for _, data in published(*(topics or ["task_progress"]))]


def throttled_every(seconds):
    return override_settings(NOTIFICATIONS=notifications_with(TASK_PROGRESS_INTERVAL=seconds))


def test_outside_a_task_run_reporting_does_nothing():
    assert current_run() is None
    assert report_progress(0.5, "halfway") is False
    assert progress_events() == []


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "half", None, True])
def test_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match=r"^Progress fraction .* is not valid\. Use a number from 0 to 1\.$"):
        report_progress(fraction)


def test_inside_the_interval_only_the_first_and_the_final_update_go_out():
    with throttled_every(60):
        result = tasks.report_steps.enqueue(10)

        assert result.return_value == 2
        events = progress_events()
        assert [(event["fraction"], event["message"]) for event in events] == [
            (0.1, "step 1"),
            (1.0, "step 10"),
        ]
        assert {event["task_id"] for event in events} == {result.id}
        assert {event["status"] for event in events} == {"running"}


def test_updates_further_apart_than_the_interval_all_go_out():
    with throttled_every(0.05):
        result = tasks.report_steps.enqueue(4, pause=0.06)

        assert result.return_value == 4
        assert [event["fraction"] for event in progress_events()] == [0.25, 0.5, 0.75, 1.0]


def test_interval_zero_publishes_every_update():
    with throttled_every(0):
        result = tasks.report_steps.enqueue(7)

        assert result.return_value == 7
        assert len(progress_events()) == 7


def test_each_run_is_throttled_on_its_own():
    with throttled_every(60):
        first = tasks.report_steps.enqueue(3)
        second = tasks.report_steps.enqueue(3)

        assert [event["task_id"] for event in progress_events()] == [first.id, first.id, second.id, second.id]


def test_progress_reaches_the_enqueuer_private_topic():
    owner = User.objects.create_user("owner")
    with throttled_every(0):
        result = tasks.report_steps.enqueue(2, enqueued_by=owner.pk)

        private = [
            data for event_type, data in published(f"user.{owner.pk}") if event_type == "task_progress"
        ]
        assert [(event["task_id"], event["fraction"]) for event in private] == [
            (result.id, 0.5),
            (result.id, 1.0),
        ]
        assert {event["enqueued_by"] for event in private} == {owner.pk}


def test_async_task_reports_with_the_async_twin():
    with throttled_every(0):
        result = tasks.report_steps_async.enqueue(3)

        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == 3
        assert [event["fraction"] for event in progress_events()] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_progress_after_an_inline_inner_run_belongs_to_the_outer_run():
    with throttled_every(0):
        outer = tasks.run_inner_then_report.enqueue()

        events = progress_events()
        assert [event["task_name"] for event in events] == ["report_steps", "run_inner_then_report"]
        assert events[1]["task_id"] == outer.id
        assert events[1]["message"] == "outer"
        assert current_run() is None


def test_progress_reported_is_sent_for_published_updates_only():
    received = []

    def record(sender, task_result, fraction, message, **kwargs):
        received.append((task_result.id, fraction, message))

    progress_reported.connect(record)
    try:
        with throttled_every(60):
            result = tasks.report_steps.enqueue(5)
    finally:
        progress_reported.disconnect(record)

    assert received == [(result.id, 0.2, "step 1"), (result.id, 1.0, "step 5")]


def test_failure_to_publish_progress_does_not_fail_the_task():
    broken = override_settings(
        NOTIFICATIONS=notifications_with(TASK_PROGRESS_INTERVAL=0, MAX_PAYLOAD_BYTES=10)
    )
    with broken:
        result = tasks.report_steps.enqueue(3)

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 0, "report_progress() says no event went out"
