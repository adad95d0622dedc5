"""
Report a running task's progress as throttled ``task_progress`` events.

A task calls report_progress(fraction, message) as it goes (an async task
awaits areport_progress()). It needs no handle on its run: the task_started
receiver marks the run current in the task's context, and task_finished
unmarks it. Outside a task run the call does nothing.

At most one event per run goes out per ``NOTIFICATIONS["TASK_PROGRESS_INTERVAL"]``
seconds. An update inside the interval is skipped, not delayed (a delay
would need a timer thread per run): the next update after it carries the
newest state, the first and the final one (fraction 1) always go out, and
task_completed ends every run.

Progress goes out at once, even inside a transaction: it tells how far the
work has come, not data others could read, and held until commit it would
all arrive at the end.
"""

import time
from contextvars import ContextVar
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.dispatch import Signal
from django.tasks import TaskResult

from ..conf import setting
from .events import RUNNING, TASK_PROGRESS, publish_task_event, shorten, task_event_data

# Sent for each update that passes the throttle, before its event is
# published, with task_result, fraction and message: a project records
# progress with it (for example on its own model of runs).
progress_reported = Signal()


@dataclass(slots=True)
class _Run:
    task_result: TaskResult
    reported_at: float | None = None


# Runs in progress in this context, innermost last: a task that runs another
# one inline (ImmediateBackend) gets its own run back when the inner ends.
_runs: ContextVar[tuple[_Run, ...]] = ContextVar("notifications_task_runs", default=())


def enter_run(task_result: TaskResult) -> None:
    """Make ``task_result`` the run that progress reported in this context belongs to."""
    _runs.set((*_runs.get(), _Run(task_result)))


def leave_run(task_result: TaskResult) -> None:
    """Forget ``task_result`` as a run in progress in this context."""
    _runs.set(tuple(run for run in _runs.get() if run.task_result.id != task_result.id))


def current_run() -> TaskResult | None:
    """Return the task run in progress in this context, or None."""
    runs = _runs.get()
    return runs[-1].task_result if runs else None


def report_progress(fraction: float, message: str = "") -> bool:
    """
    Report how far the current task run has come, from 0 to 1, with a short
    message. Return whether an event went out (False when throttled or
    outside a task run). Raise ValueError if ``fraction`` is out of range.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise ValueError(f"Progress fraction {fraction!r} is not valid. Use a number from 0 to 1.")
    runs = _runs.get()
    if not runs:
        return False
    run = runs[-1]
    now = time.monotonic()
    if (
        run.reported_at is not None
        and fraction < 1
        and now - run.reported_at < setting("TASK_PROGRESS_INTERVAL")
    ):
        return False
    run.reported_at = now
    message = shorten(str(message))
    progress_reported.send(
        type(run.task_result.task.get_backend()),
        task_result=run.task_result,
        fraction=fraction,
        message=message,
    )
    data = task_event_data(run.task_result, status=RUNNING, fraction=fraction, message=message)
    return publish_task_event(TASK_PROGRESS, data)


async def areport_progress(fraction: float, message: str = "") -> bool:
    """Report progress from an async task; see report_progress()."""
    return await sync_to_async(report_progress)(fraction, message)


__all__ = ["areport_progress", "current_run", "progress_reported", "report_progress"]
