from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from . import views

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("sse/", include("notifications.urls")),
    path("tasks/", views.task_runs, name="task_runs"),
]
