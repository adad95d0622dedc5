"""The demo's background task."""

import time

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from notifications.tasks.progress import report_progress

from .models import Report


class EmptyReport(Exception):
    """The report has no sections to generate."""


@task
def generate_report(report_id: int, enqueued_by: int | None = None) -> dict:
    """
    Write a report section by section, reporting progress, and return what
    was done, with a sentence for people under "summary". ``enqueued_by``
    names the user whose private stream hears about the run (see
    notifications.tasks.events).
    """
    report = Report.objects.get(pk=report_id)
    if report.sections == 0:
        raise EmptyReport(f"Report {report.title!r} has no sections.")
    lines = []
    for number in range(1, report.sections + 1):
        # Stands in for real work: queries, rendering, a call to a service.
        time.sleep(settings.DEMO_SECTION_SECONDS)
        lines.append(f"Section {number} of {report.title}.")
        report_progress(number / report.sections, f"Section {number} of {report.sections}")
    report.body = "\n".join(lines)
    report.generated_at = timezone.now()
    report.save(update_fields=["body", "generated_at"])
    summary = f"Report “{report.title}” is ready: {report.sections} sections."
    return {"report": report.pk, "title": report.title, "sections": report.sections, "summary": summary}
