"""
The package as an adopter gets it: build the wheel, install it into a fresh
virtualenv (dependencies from the package index, as CI installs them), start
a brand-new project with ``django-admin startproject``, apply the README's
quick start, serve it with stock ``daphne`` and receive an event that a view
of the new project publishes.

The new project never sees this checkout: it runs from a temporary directory
with the virtualenv's own site-packages.
"""

import asyncio
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from notifications.testing import ServerProcess, SSEClient, free_port, http_request

ROOT = Path(__file__).resolve().parent.parent

# Building, installing from the index (pip's cache makes it quick after the
# first run) and serving; each step is bounded on its own.
pytestmark = pytest.mark.timeout(600)


def clean_env(bin_dir: Path, home: Path) -> dict[str, str]:
    """Return only what a shell gives a new project: no settings module or PYTHONPATH of this suite."""
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def run(argv: list, cwd: Path, timeout: float = 300) -> str:
    """Run ``argv`` in a clean environment and return its output; fail the test if it fails."""
    env = clean_env(Path(sys.executable).parent, cwd)
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# The README's "Quick start for an existing project", applied to a new project.
SETTINGS = """
# --- notifications quick start ---
# daphne first, so that its runserver (ASGI) replaces Django's.
INSTALLED_APPS = ["daphne", *INSTALLED_APPS, "channels", "notifications"]
ASGI_APPLICATION = "mysite.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
NOTIFICATIONS = {
    "EVENT_TYPES": ["announcement"],
    # Logged-in users only, unless a type says otherwise (task events included).
    "DEFAULT_ACCESS": "authenticated",
    "ACCESS": {"announcement": "public"},
}
"""

ASGI = '''
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from notifications.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
'''

VIEWS = '''
from django.http import JsonResponse
from django.shortcuts import render

from notifications import publish


def announce(request):
    event_id = publish("announcement", {"text": request.GET.get("text", "")})
    return JsonResponse({"id": event_id})


def page(request):
    return render(request, "page.html")
'''

PAGE = "{% load notifications %}<!doctype html><title>New</title>{% notifications_client %}"

URLS = """
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("sse/", include("notifications.urls")),
    path("announce/", views.announce),
    path("page/", views.page),
]
"""


def quick_start(project: Path) -> None:
    """Edit the new project as the README's quick start says."""
    package = project / "mysite"
    settings = package / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS)
    (package / "asgi.py").write_text(textwrap.dedent(ASGI))
    (package / "views.py").write_text(textwrap.dedent(VIEWS))
    (package / "urls.py").write_text(textwrap.dedent(URLS))
    templates = package / "templates"
    templates.mkdir()
    (templates / "page.html").write_text(PAGE)
    # The project package as an app, so that its templates/ is found.
    settings.write_text(settings.read_text() + 'INSTALLED_APPS.append("mysite")\n')


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel built from this checkout installed; return its bin/."""
    base = tmp_path_factory.mktemp("install")
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources.
    source = base / "source"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "notifications", source / "notifications", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", source], base)
    (wheel,) = (base / "dist").glob("django_sse_notifications-*.whl")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(base / "venv")
    bin_dir = base / "venv" / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], base)
    return bin_dir


def test_wheel_ships_the_app_alone(installed):
    listing = "import importlib.metadata as m; print(*m.files('django-sse-notifications'))"
    files = run([installed / "python", "-c", listing], installed).split()
    assert "notifications/static/notifications/notifications.js" in files
    assert "notifications/templates/notifications/client.html" in files
    assert not [name for name in files if name.startswith(("project/", "tests/"))]


def test_new_project_serves_an_event_published_by_its_view(installed, tmp_path):
    run([installed / "django-admin", "startproject", "mysite", tmp_path], tmp_path)
    quick_start(tmp_path)
    where = "import notifications; print(notifications.__file__)"
    location = run([installed / "python", "-c", where], tmp_path)
    assert location.startswith(str(installed.parent)), location
    run([installed / "python", "manage.py", "check", "--fail-level", "WARNING"], tmp_path, timeout=60)

    port = free_port()
    argv = [installed / "daphne", "-b", "127.0.0.1", "-p", str(port), "mysite.asgi:application"]
    server = ServerProcess([str(arg) for arg in argv], port, cwd=tmp_path)
    server.env = clean_env(installed, tmp_path)
    server.start(tmp_path / "daphne.log")
    try:
        status, body = http_request(port, "GET", "/page/")
        assert status == 200, body
        assert b"/static/notifications/notifications" in body

        async def receive() -> SSEClient:
            client = SSEClient("127.0.0.1", port, "/sse/subscribe/announcement/")
            await client.connect()
            assert client.status == 200
            await client.read_until(lambda c: c.retry is not None, 10)
            status, body = await asyncio.to_thread(http_request, port, "GET", "/announce/?text=hello")
            assert status == 200, body
            await client.read_until(lambda c: c.of_type("announcement"), 10)
            client.close()
            return client

        client = asyncio.run(receive())
        (event,) = client.of_type("announcement")
        assert event.json() == {"text": "hello"}
    finally:
        server.stop(timeout=10)
    assert "Traceback" not in server.output()

