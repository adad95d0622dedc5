"""Template tags for pages that show task runs live."""

from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from notifications.access import public_types
from notifications.tasks.events import TASK_COMPLETED, TASK_EVENT_TYPES
from notifications.templatetags.notifications import CSP_NONCE

from ..models import TaskRun, sees_every_run

register = template.Library()

# What each live cell shows; project/static/project/task_runs.js writes the
# same texts from events.
LIVE_FIELDS = {
    "status": lambda run: run.status,
    "progress": TaskRun.progress_text,
    "outcome": TaskRun.outcome_text,
    "duration": TaskRun.duration_text,
}


@register.simple_tag
def live_cell(run: TaskRun, field: str) -> SafeString:
    """Render ``field`` of ``run`` in an element the live script updates from events."""
    if field == "progress":
        # A progress bar (role progressbar, its value read out by screen
        # readers) beside the same text; the bar itself holds no text.
        return format_html(
            '<span class="task-progress" data-task-id="{}" data-field="progress">'
            '<progress max="100" value="{}" aria-label="Progress of {}"></progress> '
            '<span class="task-progress-text">{}</span></span>',
            run.task_id,
            round(run.progress * 100),
            run.task_name,
            run.progress_text(),
        )
    return format_html(
        '<span data-task-id="{}" data-field="{}">{}</span>', run.task_id, field, LIVE_FIELDS[field](run)
    )


@register.inclusion_tag("task_runs/live.html", takes_context=True)
def task_runs_live(context: template.Context) -> dict[str, Any]:
    """
    Put the notifications client on the page, set for the task runs the user
    may see, and the script that keeps them live and toasts the user's own
    finished runs. Use it in place of {% notifications_client %}: a page
    holds one client.
    """
    user = context["user"]
    # Every run's events for those who watch every run; their own runs, on
    # their private topic, for everyone logged in.
    watched = list(TASK_EVENT_TYPES) if sees_every_run(user) else []
    return {
        # The tag's template gets only this dict; the client tag needs these.
        "request": context.get("request"),
        CSP_NONCE: context.get(CSP_NONCE),
        "types": [*public_types(), *watched],
        "private_types": list(TASK_EVENT_TYPES),
        "config": {
            "types": list(TASK_EVENT_TYPES),
            "completed": TASK_COMPLETED,
            "userId": user.pk,
            "username": user.get_username(),
            # Where a finished run's toast links to: the page of the run.
            "runUrl": reverse("task_run", args=["TASK_ID"]),
        },
    }
