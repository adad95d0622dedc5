"""
Receivers of Django's task signals that publish the life of every task run:
``task_enqueued``, ``task_started`` and ``task_completed`` events (what they
carry and where they go: events.py; progress: progress.py).

They run in whichever process sends the signal: the one that enqueues, and
the one that runs the task (the request itself under ImmediateBackend, a
``db_worker`` process, or the server's embedded worker). An event about work
done inside a transaction goes out when it commits, and never if it rolls
back: a browser told that a run was queued or finished must find it so.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction
from django.tasks import TaskResult
from django.tasks.signals import task_enqueued, task_finished, task_started

from ..topics import register
from .events import (
    NOT_PUBLISHED,
    TASK_COMPLETED,
    TASK_ENQUEUED,
    TASK_EVENT_TYPES,
    TASK_STARTED,
    publish_task_event,
    task_event_data,
    task_outcome,
)
from .progress import enter_run, leave_run

logger = logging.getLogger(__name__)


def publish_task_enqueued(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Announce a queued run once the enqueuing transaction commits."""
    _publish_after_commit(TASK_ENQUEUED, task_result, lambda: task_event_data(task_result))


def publish_task_started(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Announce a started run, and make it the run report_progress() speaks for."""
    enter_run(task_result)
    _publish_after_commit(TASK_STARTED, task_result, lambda: task_event_data(task_result))


def publish_task_finished(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Announce how a run ended: a short result or the error, and its duration."""
    leave_run(task_result)
    _publish_after_commit(
        TASK_COMPLETED, task_result, lambda: task_event_data(task_result, **task_outcome(task_result))
    )


def _publish_after_commit(event_type: str, task_result: TaskResult, build: Callable[[], dict]) -> None:
    # The data is built now: the run changes later, and task_outcome() needs
    # the exception that is being handled while the signal is sent.
    try:
        data = build()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(partial(publish_task_event, event_type, data), robust=True)
        else:
            # Outside a transaction on_commit() would run it at once too,
            # but would first open a database connection to check autocommit.
            publish_task_event(event_type, data)
    except Exception as exc:
        logger.warning(NOT_PUBLISHED, event_type, task_result.id, exc)


def connect() -> None:
    """Declare the task event types and connect the receivers (once, from AppConfig.ready())."""
    for event_type in TASK_EVENT_TYPES:
        register(event_type)
    task_enqueued.connect(publish_task_enqueued, dispatch_uid="notifications.publish_task_enqueued")
    task_started.connect(publish_task_started, dispatch_uid="notifications.publish_task_started")
    task_finished.connect(publish_task_finished, dispatch_uid="notifications.publish_task_finished")
