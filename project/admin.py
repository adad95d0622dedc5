from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import ngettext

from .models import Report, TaskRun, sees_every_run
from .tasks import generate_report
from .templatetags.task_runs import live_cell


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["title", "sections", "generated_at"]
    actions = ["generate"]

    @admin.action(description="Generate report", permissions=["change"])
    def generate(self, request: HttpRequest, queryset: QuerySet[Report]) -> HttpResponse | None:
        """Queue a generate_report run per selected report and answer at once; a worker runs them."""
        # One transaction: the runs are queued (and announced) together or not at all.
        with transaction.atomic():
            count = 0
            for report in queryset:
                generate_report.enqueue(report.pk, enqueued_by=request.user.pk)
                count += 1
        self.message_user(
            request,
            ngettext(
                "Generating %d report in the background; you will be told when it is done.",
                "Generating %d reports in the background; you will be told when each is done.",
                count,
            )
            % count,
            messages.SUCCESS,
        )
        if sees_every_run(request.user):
            return redirect("admin:project_taskrun_changelist")
        return None


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    """Task runs, read-only; status, progress and outcome update live on the change list."""

    list_display = [
        "task_name",
        "live_status",
        "live_progress",
        "live_outcome",
        "live_duration",
        "started_by",
        "enqueued_at",
    ]
    list_filter = ["status", "task_name"]
    readonly_fields = [field.name for field in TaskRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def live_status(self, run):
        return live_cell(run, "status")

    @admin.display(description="progress", ordering="progress")
    def live_progress(self, run):
        return live_cell(run, "progress")

    @admin.display(description="outcome")
    def live_outcome(self, run):
        return live_cell(run, "outcome")

    @admin.display(description="duration")
    def live_duration(self, run):
        return live_cell(run, "duration")
