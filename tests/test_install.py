"""
The package as an adopter gets it: build the wheel, install it into a fresh
virtualenv (dependencies from the package index, as CI installs them), start
a brand-new project with ``django-admin startproject``, apply the snippets
of README's quick start (read from README.md), serve it with stock
``daphne`` and receive an event that a view of the new project publishes.

The new project never sees this checkout: it runs from a temporary directory
with the virtualenv's own site-packages.
"""

import asyncio
import re
import shutil
import subprocess
import sys
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


# README's quick start marks each snippet with the file it goes to.
QUICK_START = re.compile(
    r"<!-- quick start: (?P<target>[^,>]+?)(?P<append>, append)? -->\n```\w+\n(?P<code>.*?)```", re.S
)
TARGETS = {"mysite/settings.py", "mysite/asgi.py", "mysite/urls.py", "mysite/views.py", "templates/page.html"}


def quick_start(project: Path) -> None:
    """Apply README's "Quick start for an existing project" to the new project, snippet by snippet."""
    snippets = list(QUICK_START.finditer((ROOT / "README.md").read_text()))
    assert {snippet["target"] for snippet in snippets} == TARGETS
    for snippet in snippets:
        path = project / snippet["target"]
        path.parent.mkdir(exist_ok=True)
        code = snippet["code"]
        path.write_text(path.read_text() + "\n" + code if snippet["append"] else code)


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
        for name in ("notifications.js", "notifications.css"):
            assert f"/static/notifications/{name}".encode() in body
        # What the browser then fetches (notifications.js imports notifications.mjs).
        for name in ("notifications.js", "notifications.mjs", "notifications.css"):
            status, _ = http_request(port, "GET", f"/static/notifications/{name}")
            assert status == 200, name

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
