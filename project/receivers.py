"""
Keep a TaskRun row for every task run, from Django's task signals and the
notifications app's progress signal.

They run where the signal is sent and inside its transaction, if any: a run
enqueued in a transaction that rolls back leaves no row.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.tasks import TaskResult
from django.tasks.signals import task_enqueued, task_finished, task_started

from notifications.tasks.events import STATUSES, enqueued_by, task_outcome
from notifications.tasks.progress import progress_reported

from .models import TaskRun


def record_task_enqueued(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Record a queued run and who enqueued it."""
    _save(task_result, status=TaskRun.Status.QUEUED, enqueued_at=task_result.enqueued_at)


def record_task_started(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Record that a run started."""
    _save(task_result, status=TaskRun.Status.RUNNING, started_at=task_result.started_at)


def record_task_progress(
    sender: type, task_result: TaskResult, fraction: float, message: str, **kwargs: Any
) -> None:
    """Record how far a run has come."""
    TaskRun.objects.filter(task_id=task_result.id).update(progress=fraction, progress_message=message)


def record_task_finished(sender: type, task_result: TaskResult, **kwargs: Any) -> None:
    """Record how a run ended: its short result, or its error."""
    outcome = task_outcome(task_result)
    fields = {"status": STATUSES[task_result.status], "finished_at": task_result.finished_at}
    if "error" in outcome:
        error = outcome["error"]
        fields["error"] = f"{error['class'].rpartition('.')[2]}: {error['message']}"
    else:
        fields.update(result=outcome["result"], progress=1)
    _save(task_result, **fields)


def _save(task_result: TaskResult, **fields: Any) -> None:
    # A run enqueued before this receiver existed still gets its row.
    TaskRun.objects.update_or_create(
        task_id=task_result.id,
        defaults=fields,
        create_defaults={**fields, "task_name": task_result.task.name, "started_by": _enqueuer(task_result)},
    )


def _enqueuer(task_result: TaskResult) -> AbstractBaseUser | None:
    pk = enqueued_by(task_result)
    if pk is None:
        return None
    try:
        return get_user_model().objects.filter(pk=pk).first()
    except (TypeError, ValueError, ValidationError):
        # Not a key of this user model: record the run without its starter.
        return None


def connect() -> None:
    """Connect the receivers (once, from AppConfig.ready())."""
    task_enqueued.connect(record_task_enqueued, dispatch_uid="project.record_task_enqueued")
    task_started.connect(record_task_started, dispatch_uid="project.record_task_started")
    task_finished.connect(record_task_finished, dispatch_uid="project.record_task_finished")
    progress_reported.connect(record_task_progress, dispatch_uid="project.record_task_progress")
