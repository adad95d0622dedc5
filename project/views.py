from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import runs_visible_to

# Runs listed on the page; older ones are in the admin.
RECENT_RUNS = 50


@login_required
def task_runs(request: HttpRequest) -> HttpResponse:
    """List recent task runs the user may see; the page keeps them live."""
    return render(request, "task_runs/list.html", {"runs": runs_visible_to(request.user)[:RECENT_RUNS]})
