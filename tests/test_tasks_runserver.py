"""
`manage.py runserver` alone runs the whole demo: the admin action answers at
once, the server's embedded worker runs the task, its events reach the user's
stream, and a stop with a task still running ends promptly and cleanly.
"""

import http.client
import signal
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from notifications.testing import SSEClient, free_port, runserver

from .conftest import ROOT

SETUP = """
from django.contrib.auth.models import User
from django.core.management import call_command
from project.models import Report
call_command("migrate", verbosity=0)
User.objects.create_superuser("admin", password="pw")
Report.objects.create(title="Quick", sections=3)
Report.objects.create(title="Long", sections=300)
"""
ADMIN_ID = 1
QUICK, LONG = 1, 2
DRAIN_TIMEOUT = 2


class Browser:
    """Cookies and the CSRF token over http.client: enough to log in and post an admin form."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> dict:
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str | None, str]:
        headers = self.cookie_header()
        body = b""
        if form is not None:
            body = urlencode({**form, "csrfmiddlewaretoken": self.cookies["csrftoken"]}, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response.status, response.getheader("Location"), response.read().decode()
        finally:
            connection.close()

    def page_shows(self, path: str, text: str, attempts: int = 20) -> bool:
        """Return whether ``path`` shows ``text`` within ``attempts`` tries 0.1 s apart."""
        for _ in range(attempts):
            if text in self.request("GET", path)[2]:
                return True
            time.sleep(0.1)
        return False

    def log_in(self, username: str, password: str) -> None:
        self.request("GET", "/admin/login/")
        status, _, _ = self.request("POST", "/admin/login/", {"username": username, "password": password})
        assert status == 302, "logged in"


@pytest.fixture
def server(tmp_path, server_env):
    env = {**server_env, "DEMO_SECTION_SECONDS": "0.1", "NOTIFICATIONS_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT)}
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    process = runserver(free_port(), env=env, cwd=ROOT).start(tmp_path / "runserver.log")
    yield process
    process.stop()


async def test_runserver_alone_runs_the_admin_task_demo_and_stops_cleanly(server):
    browser = Browser(server.port)
    browser.log_in("admin", "pw")
    stream = SSEClient("127.0.0.1", server.port, f"/sse/subscribe/user.{ADMIN_ID}/", browser.cookie_header())
    await stream.connect()
    assert stream.status == 200

    status, location, _ = browser.request(
        "POST", "/admin/project/report/", {"action": "generate", "_selected_action": [QUICK]}
    )
    assert (status, location) == (302, "/admin/project/taskrun/")
    assert await stream.read_until(lambda client: client.of_type("task_completed"), 30), server.output()

    statuses = [(event.event, event.json()["status"]) for event in stream.events]
    assert statuses[:2] == [("task_enqueued", "queued"), ("task_started", "running")]
    assert ("task_progress", "running") in statuses
    completed = stream.of_type("task_completed")[0].json()
    assert completed["status"] == "succeeded"
    assert completed["result"] == {
        "report": QUICK,
        "title": "Quick",
        "sections": 3,
        "summary": "Report “Quick” is ready: 3 sections.",
    }
    assert completed["summary"] == "Report “Quick” is ready: 3 sections."
    assert completed["enqueued_by"] == ADMIN_ID
    # The demo's own receiver records the run just after the event goes out.
    final_cell = f'data-task-id="{completed["task_id"]}" data-field="status">succeeded<'
    assert browser.page_shows("/tasks/", final_cell)

    # A stop while a long task runs: the worker gets part of the drain
    # timeout, then the task is abandoned and the server exits cleanly.
    browser.request("POST", "/admin/project/report/", {"action": "generate", "_selected_action": [LONG]})
    assert await stream.read_until(lambda client: len(client.of_type("task_progress")) > 3, 30)
    sent_at = server.signal(signal.SIGINT)
    ended = await stream.read_to_end(15)
    returncode = server.wait(15)
    exit_seconds = time.monotonic() - sent_at
    output = server.output()

    assert returncode == 0, output
    assert ended, "the stream ended with the chunked terminator"
    assert stream.events[-1].event == "server_shutdown"
    assert exit_seconds < DRAIN_TIMEOUT * 3, exit_seconds
    assert "abandoned" in output
    assert "Traceback" not in output
    stream.close()
