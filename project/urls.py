from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from django.views.generic import TemplateView

from . import views

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("live/", TemplateView.as_view(template_name="live.html"), name="live"),
    path("admin/", admin.site.urls),
    path("sse/", include("notifications.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tasks/", views.task_runs, name="task_runs"),
    path("tasks/generate/", views.generate, name="generate_report"),
    path("tasks/<str:task_id>/", views.task_run, name="task_run"),
]
# The daphne command serves no static files; with DEBUG on, Django does.
urlpatterns += staticfiles_urlpatterns()
