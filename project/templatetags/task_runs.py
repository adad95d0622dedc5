"""Template tags for pages that show task runs live."""

from django import template
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from notifications.task_events import TASK_EVENT_TYPES
from notifications.topics import user_topic

from ..models import TaskRun, sees_every_run

register = template.Library()

# What each live cell shows; templates/task_runs/live.html writes the same
# texts from events.
LIVE_FIELDS = {
    "status": lambda run: run.status,
    "progress": TaskRun.progress_text,
    "outcome": TaskRun.outcome_text,
    "duration": TaskRun.duration_text,
}


@register.simple_tag
def live_cell(run: TaskRun, field: str) -> SafeString:
    """Render ``field`` of ``run`` in an element the live script updates from events."""
    return format_html(
        '<span data-task-id="{}" data-field="{}">{}</span>', run.task_id, field, LIVE_FIELDS[field](run)
    )


def stream_url(user: AbstractBaseUser) -> str:
    """Return the stream that carries the task events ``user`` may see."""
    if sees_every_run(user):
        return reverse("notifications:subscribe_many") + "?types=" + ",".join(TASK_EVENT_TYPES)
    return reverse("notifications:subscribe", args=[user_topic(user)])


@register.inclusion_tag("task_runs/live.html", takes_context=True)
def task_runs_live(context: template.Context) -> dict:
    """Include the script that keeps task runs on the page live and toasts the user's own."""
    user = context["user"]
    return {
        "config": {
            "url": stream_url(user),
            "types": list(TASK_EVENT_TYPES),
            "userId": user.pk,
            "username": user.get_username(),
        }
    }
