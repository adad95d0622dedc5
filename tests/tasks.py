"""Tasks the tests enqueue (Django tasks must be module-level functions)."""

import time

from django.tasks import task

from notifications.tasks.progress import areport_progress, report_progress


@task
def add(a: int, b: int, enqueued_by: int | None = None) -> int:
    return a + b


@task
def fail(message: str, enqueued_by: int | None = None) -> None:
    raise ValueError(message)


@task
def echo(value, enqueued_by: int | None = None):
    return value


@task
def report_steps(steps: int, pause: float = 0, enqueued_by: int | None = None) -> int:
    """Report progress after each of ``steps`` steps, pausing ``pause`` seconds before each."""
    published = 0
    for step in range(1, steps + 1):
        time.sleep(pause)
        published += report_progress(step / steps, f"step {step}")
    return published


@task
async def report_steps_async(steps: int, enqueued_by: int | None = None) -> int:
    published = 0
    for step in range(1, steps + 1):
        published += await areport_progress(step / steps, f"step {step}")
    return published


@task
def run_inner_then_report(enqueued_by: int | None = None) -> None:
    """Run another task inline (ImmediateBackend), then report progress for this one."""
    report_steps.enqueue(1)
    report_progress(0.5, "outer")
