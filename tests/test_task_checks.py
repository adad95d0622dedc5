"""System checks for the task options and for where task events can go."""

import pytest
from django.db import connections
from django.test import override_settings

from notifications.checks import check_settings
from notifications.tasks.checks import check_tasks

from .task_helpers import DATABASE_TASKS, notifications_with

IMMEDIATE_TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
DATABASE_HISTORY = "notifications.history.database.DatabaseHistory"
REDIS_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


def ids(messages):
    return [message.id for message in messages]


def test_test_settings_pass():
    assert check_tasks() == []


@pytest.mark.parametrize("value", [-1, "fast", None, True])
def test_progress_interval_must_be_a_non_negative_number(value):
    with override_settings(NOTIFICATIONS=notifications_with(TASK_PROGRESS_INTERVAL=value)):
        errors = check_settings()

    assert [error.msg for error in errors] == [
        f"NOTIFICATIONS['TASK_PROGRESS_INTERVAL'] must be a non-negative number of seconds, not {value!r}."
    ]


@pytest.mark.parametrize("value", [0, 2.5])
def test_progress_interval_accepts_zero_and_fractions(value):
    with override_settings(NOTIFICATIONS=notifications_with(TASK_PROGRESS_INTERVAL=value)):
        assert check_settings() == []


def test_embedded_worker_needs_a_django_tasks_db_backend():
    with override_settings(NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER="default")):
        errors = check_tasks()

    assert ids(errors) == ["notifications.E010"]
    assert errors[0].msg == (
        "NOTIFICATIONS['EMBEDDED_TASK_WORKER'] 'default' is not a TASKS alias of a "
        "django_tasks_db.DatabaseBackend backend."
    )


def test_embedded_worker_alias_must_exist():
    with override_settings(
        TASKS=DATABASE_TASKS, NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER="other")
    ):
        assert "notifications.E010" in ids(check_tasks())


@pytest.fixture
def transaction_mode(monkeypatch):
    """Set the default database's SQLite transaction mode for the test."""
    options = connections["default"].settings_dict["OPTIONS"]

    def set_mode(mode):
        if mode is None:
            monkeypatch.delitem(options, "transaction_mode", raising=False)
        else:
            monkeypatch.setitem(options, "transaction_mode", mode)

    return set_mode


def test_embedded_worker_on_sqlite_with_deferred_transactions_warns(transaction_mode):
    transaction_mode(None)
    with override_settings(
        TASKS=DATABASE_TASKS, NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER="default")
    ):
        warnings = check_tasks()

    assert ids(warnings) == ["notifications.W012"]
    assert warnings[0].msg == (
        "The embedded task worker writes to the SQLite database 'default' while requests do, and its "
        "transactions are DEFERRED: one that reads before it writes fails with 'database is locked' "
        "when the worker commits in between."
    )
    assert warnings[0].hint == "Set DATABASES['default']['OPTIONS']['transaction_mode'] to 'IMMEDIATE'."


@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE", "immediate"])
def test_embedded_worker_on_sqlite_taking_the_write_lock_first_passes(transaction_mode, mode):
    transaction_mode(mode)
    with override_settings(
        TASKS=DATABASE_TASKS, NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER="default")
    ):
        assert check_tasks() == []


def test_deferred_sqlite_transactions_pass_without_the_embedded_worker(transaction_mode):
    transaction_mode("DEFERRED")
    with override_settings(TASKS=DATABASE_TASKS, NOTIFICATIONS=notifications_with()):
        assert "notifications.W012" not in ids(check_tasks())


def test_embedded_worker_option_must_be_none_or_a_name():
    with override_settings(NOTIFICATIONS=notifications_with(EMBEDDED_TASK_WORKER=3)):
        errors = check_settings()

    assert [error.msg for error in errors] == [
        "NOTIFICATIONS['EMBEDDED_TASK_WORKER'] must be None or an alias in TASKS, not 3."
    ]


@pytest.mark.parametrize("layers", [None, REDIS_LAYERS], ids=["in-memory-layer", "redis-layer"])
def test_separate_workers_with_an_in_memory_history_warn(settings, layers):
    # A worker's publish() refuses events its own in-memory history would keep.
    if layers:
        settings.CHANNEL_LAYERS = layers
    with override_settings(TASKS=DATABASE_TASKS):
        warnings = check_tasks()

    assert ids(warnings) == ["notifications.W010"]
    assert warnings[0].msg == (
        "Tasks of TASKS ['default'] run in separate worker processes, but the notifications history "
        "is kept in each process: their events never reach the server."
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"TASKS": IMMEDIATE_TASKS},
        {"TASKS": DATABASE_TASKS, "NOTIFICATIONS": notifications_with(EMBEDDED_TASK_WORKER="default")},
        {"TASKS": DATABASE_TASKS, "NOTIFICATIONS": notifications_with(HISTORY_BACKEND=DATABASE_HISTORY)},
    ],
    ids=["tasks-run-inline", "tasks-run-in-the-server", "history-shared-by-processes"],
)
def test_no_warning_when_task_events_can_reach_the_server(changes):
    with override_settings(**changes):
        assert check_tasks() == []


def test_public_task_events_warn():
    with override_settings(NOTIFICATIONS=notifications_with(ACCESS={"task_completed": "authenticated"})):
        warnings = check_tasks()

    assert ids(warnings) == ["notifications.W011"]
    assert warnings[0].msg == (
        "Anyone may subscribe to the task events ['task_enqueued', 'task_started', 'task_progress']: "
        "every task's status and result is public."
    )
