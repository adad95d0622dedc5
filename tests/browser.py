"""
Chromium against a real Daphne: fixtures and helpers shared by the browser
tests (registered for the suite by tests/conftest.py).

The browser is the system Chromium, never downloaded. The server runs the
demo project with tests.browser_settings (short heartbeats and retries, a
test-only stream count) on one port across restarts. Screenshots go to
artifacts/ (not committed).
"""

import json
import os
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from notifications.testing import daphne, free_port, http_request

from .conftest import ROOT
from .lifecycle import publish_http
from .support import DEMO_ASGI

ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Maps to 127.0.0.1 in the test browser: a plain-http origin other than
# localhost, where browsers offer no Web Locks API.
INSECURE_HOST = "notifications.test"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",
]
TIMEOUT_MS = 30_000
# How much of a server's log a failed test's report shows.
SERVER_LOG_CHARS = 20_000
# Runs in every page before its own scripts: records what the page shows,
# and counts the EventSources it opens (each reconnection opens one) and the
# keepalive events they receive.
RECORDER = """
window.recorded = {events: [], types: [], resets: [], streams: 0, keepalives: 0};
document.addEventListener("notifications:event", (e) => {
  window.recorded.events.push(e.detail.id);
  window.recorded.types.push(e.detail.type);
});
document.addEventListener("notifications:reset", (e) => window.recorded.resets.push(e.detail.reason));
window.EventSource = class extends window.EventSource {
  constructor(...args) {
    super(...args);
    window.recorded.streams += 1;
    this.addEventListener("keepalive", () => (window.recorded.keepalives += 1));
  }
};
"""

expect.set_options(timeout=TIMEOUT_MS)


class Site:
    """The demo project under Daphne (tests.browser_settings), on one port across restarts."""

    def __init__(self, tmp_path, env):
        self.tmp_path = tmp_path
        self.env = {**env, "DJANGO_SETTINGS_MODULE": "tests.browser_settings"}
        self.port = free_port()
        self.servers = []

    @property
    def server(self):
        return self.servers[-1]

    def start(self) -> "Site":
        log = self.tmp_path / f"daphne-{len(self.servers)}.log"
        self.servers.append(daphne(self.port, DEMO_ASGI, env=self.env, cwd=ROOT).start(log))
        return self

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def manage(self, *args: str) -> str:
        """Run a manage.py command with the server's settings; return its output."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    def create_superuser(self, username: str, password: str) -> None:
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_superuser({username!r}, '', {password!r})",
        )

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def publish(self, text: str) -> str:
        status, body = publish_http(self.port, "announcement", {"text": text})
        assert status == 202, body
        return body["id"]

    def open_streams(self) -> int:
        return json.loads(http_request(self.port, "GET", "/test-only/streams/")[1])["streams"]

    def wait_for_open_streams(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (found := self.open_streams()) != count:
            assert time.monotonic() < deadline, f"{found} streams open on the server, expected {count}"
            time.sleep(0.1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Add the logs of a failed test's servers to its report: CI keeps only the report."""
    report = yield
    if report.failed:
        sites = [value for value in getattr(item, "funcargs", {}).values() if isinstance(value, Site)]
        for site in sites:
            for number, server in enumerate(site.servers):
                report.sections.append((f"daphne {number} log (end)", server.output()[-SERVER_LOG_CHARS:]))
    return report


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORDER)
    yield context
    context.close()


@pytest.fixture
def site(tmp_path, server_env):
    site = Site(tmp_path, server_env).start()
    yield site
    site.stop_all()


def open_page(context, url):
    page = context.new_page()
    page.goto(url)
    expect_state(page, "live")
    return page


def expect_state(page, state, **options):
    expect(page.locator("[data-notifications-state]")).to_have_attribute("data-state", state, **options)


def wait_for_events(page, count):
    page.wait_for_function("count => window.recorded.events.length >= count", arg=count)


def shown(page):
    return page.evaluate("window.recorded.events")


def navigate_publishing_meanwhile(page, site, path, text):
    """
    Go to ``path``, publishing an event when the page left behind is gone and
    the next page's client has not loaded yet; return the event's id.
    """
    published = []

    def publish_then_load(route):
        published.append(site.publish(text))
        route.continue_()

    page.route("**/notifications.js", publish_then_load, times=1)
    page.goto(site.url(path))
    assert published, "the next page loads the client"
    return published[0]


def follow_link_held(page, name: str, url: str):
    """
    Click the link ``name`` on ``page`` and hold the navigation's request for
    ``url``: the page stays on screen, with its stream, until the returned
    route is continued, like a page whose POST is still being answered.
    """
    held = []
    page.route(url, lambda route: held.append(route), times=1)
    page.get_by_role("link", name=name, exact=True).click(no_wait_after=True)
    # Route handlers run while Playwright waits on something.
    for _ in range(200):
        if held:
            return held[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"the request for {url} never came")


def log_in(page, site: Site, username: str, password: str, next_path: str = "/admin/") -> None:
    """Log in through the admin's login form and land on ``next_path``."""
    page.goto(site.url(f"/admin/login/?next={next_path}"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(site.url(next_path))
