from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import Report, runs_visible_to
from .tasks import generate_report

# Runs listed on the page; older ones are in the admin.
RECENT_RUNS = 50


@login_required
def task_runs(request: HttpRequest) -> HttpResponse:
    """List recent task runs the user may see; the page keeps them live."""
    context = {"runs": runs_visible_to(request.user)[:RECENT_RUNS], "reports": Report.objects.all()}
    return render(request, "task_runs/list.html", context)


@login_required
def task_run(request: HttpRequest, task_id: str) -> HttpResponse:
    """Show one run the user may see, kept live; where a finished run's toast leads."""
    run = get_object_or_404(runs_visible_to(request.user), task_id=task_id)
    return render(request, "task_runs/detail.html", {"run": run})


@login_required
@require_POST
def generate(request: HttpRequest) -> HttpResponse:
    """Queue a report for any logged-in user, who then follows their own run on /tasks/."""
    report = get_object_or_404(Report, pk=request.POST.get("report"))
    generate_report.enqueue(report.pk, enqueued_by=request.user.pk)
    return redirect("task_runs")
