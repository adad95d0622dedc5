"""
Events about Django task runs: what they carry and where they go.

Every event about a run goes to its event type's topic, which the project
guards with an ACCESS rule (staff with a permission see every run), and, when
the user who enqueued the run is known, to that user's private topic.

Who enqueued a run is a convention on the task's own arguments: the code that
enqueues passes the user's primary key as the ``enqueued_by`` keyword
argument, and the task accepts it::

    generate_report.enqueue(report.pk, enqueued_by=request.user.pk)

A keyword argument travels with the task to whichever process runs it (a
``db_worker`` on another machine included); a contextvar would stay behind
in the process that enqueued it.

A task says what it did in a sentence for people by returning a dict with a
``"summary"`` string; task_completed carries it (and, for a failed run, the
error's message) as ``summary``.

Publishing never breaks a task: a failure is logged once, as a warning, and
the task goes on.
"""

import json
import logging
import sys
from typing import Any

from django.tasks import TaskResult, TaskResultStatus

from ..publishing import publish

logger = logging.getLogger(__name__)

TASK_ENQUEUED = "task_enqueued"
TASK_STARTED = "task_started"
TASK_PROGRESS = "task_progress"
TASK_COMPLETED = "task_completed"
TASK_EVENT_TYPES = (TASK_ENQUEUED, TASK_STARTED, TASK_PROGRESS, TASK_COMPLETED)

# The keyword argument that names the user who enqueued a task.
ENQUEUED_BY = "enqueued_by"

# The key of a task's dict result that says, in a sentence, what it did.
SUMMARY = "summary"

# A run's status, as events (and pages) spell it.
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = {
    TaskResultStatus.READY: QUEUED,
    TaskResultStatus.RUNNING: RUNNING,
    TaskResultStatus.SUCCESSFUL: SUCCEEDED,
    TaskResultStatus.FAILED: FAILED,
}

# Longest result, error message or progress message an event carries, in
# characters: events are notices, the full result stays with the task backend.
SUMMARY_CHARS = 200

NOT_PUBLISHED = "Task event not published type=%s task_id=%s error=%r"


def enqueued_by(task_result: TaskResult) -> Any:
    """Return the primary key of the user who enqueued the run, or None."""
    return task_result.kwargs.get(ENQUEUED_BY)


def shorten(text: str) -> str:
    """Return ``text`` cut to SUMMARY_CHARS characters, marking the cut."""
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def task_event_data(task_result: TaskResult, **fields: Any) -> dict[str, Any]:
    """Return the data of an event about ``task_result``: what every event carries, plus ``fields``."""
    return {
        "task_id": str(task_result.id),
        "task_name": task_result.task.name,
        "status": STATUSES[task_result.status],
        ENQUEUED_BY: enqueued_by(task_result),
        **fields,
    }


def task_outcome(task_result: TaskResult) -> dict[str, Any]:
    """
    Return how a finished run ended: its duration in seconds, a short result
    or the error's class and message, and ``summary``, a sentence for people:
    the ``"summary"`` string of a task's dict result, or the error's
    message (None when the task gives none). Call it from a task_finished
    receiver, where the exception being handled gives the full message.
    """
    duration = None
    if task_result.started_at and task_result.finished_at:
        duration = round((task_result.finished_at - task_result.started_at).total_seconds(), 3)
    if task_result.status == TaskResultStatus.SUCCESSFUL:
        value = task_result.return_value
        summary = value.get(SUMMARY) if isinstance(value, dict) else None
        return {
            "duration": duration,
            "result": short_result(value),
            SUMMARY: shorten(summary) if isinstance(summary, str) else None,
        }
    error = error_summary(task_result)
    return {"duration": duration, "error": error, SUMMARY: error["message"] or None}


def short_result(value: Any) -> Any:
    """Return ``value`` if its JSON is short, else that JSON cut short."""
    text = json.dumps(value, default=str)
    return value if len(text) <= SUMMARY_CHARS else shorten(text)


def error_summary(task_result: TaskResult) -> dict[str, str]:
    """Return the class path and message of the error that failed the run."""
    error = task_result.errors[-1] if task_result.errors else None
    class_path = error.exception_class_path if error else ""
    # Backends send task_finished inside their exception handler, so the
    # exception itself is at hand; the traceback is the fallback.
    exception = sys.exc_info()[1]
    if exception is not None and _class_path(type(exception)) == class_path:
        message = str(exception)
    else:
        last_line = error.traceback.rstrip().rpartition("\n")[2] if error else ""
        message = last_line.partition(": ")[2]
    return {"class": class_path, "message": shorten(message)}


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def publish_task_event(event_type: str, data: dict[str, Any]) -> bool:
    """
    Publish an event about a run to its type's topic and to the private
    topic of the user who enqueued it. Never raise: log a failure once and
    return whether every copy went out.
    """
    owner = data.get(ENQUEUED_BY)
    errors = []
    for user in (None,) if owner is None else (None, owner):
        try:
            publish(event_type, data, user=user)
        except Exception as exc:
            errors.append(exc)
    if errors:
        logger.warning(NOT_PUBLISHED, event_type, data.get("task_id"), errors[0])
    return not errors
