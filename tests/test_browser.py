"""
The browser client (notifications.js) in Chromium against a real Daphne:
toasts, reconnection across a restart and a frozen server, one connection
shared by tabs, navigation, payloads shown as text, the admin.

Screenshots go to artifacts/ (not committed).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from notifications.testing import daphne, free_port, http_request

from .conftest import ROOT
from .lifecycle import publish_http

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
# Runs in every page before its own scripts: records what the page shows.
RECORDER = """
window.recorded = {events: [], resets: []};
document.addEventListener("notifications:event", (e) => window.recorded.events.push(e.detail.id));
document.addEventListener("notifications:reset", (e) => window.recorded.resets.push(e.detail.reason));
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
        self.servers.append(daphne(self.port, env=self.env, cwd=ROOT).start(log))
        return self

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            timeout=120,
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


def test_published_event_appears_as_a_dismissable_toast(context, site):
    page = open_page(context, site.url("/live/"))

    event_id = site.publish("Deploy finished")

    toast = page.locator(".notifications-toast").filter(has_text="Deploy finished")
    expect(toast).to_have_count(1)
    expect(toast.locator(".notifications-toast-title")).to_have_text("Announcement")
    expect(page.locator(".notifications-toasts")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#live-log li")).to_have_text(
        [f'announcement {event_id}: {{"text":"Deploy finished"}}']
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "toast.png")
    toast.get_by_role("button", name="Dismiss notification").click()
    expect(toast).to_have_count(0)
    assert shown(page) == [event_id]
    page.close()
    site.wait_for_open_streams(0)


def test_markup_in_a_payload_is_shown_as_text(context, site):
    page = open_page(context, site.url("/live/"))
    markup = '<img src="x" onerror="window.injected = 1"><script>window.injected = 2</script><b>bold</b>'

    site.publish(markup)

    expect(page.locator(".notifications-toast-text")).to_have_text(markup)
    assert (
        page.locator(
            ".notifications-toasts img, .notifications-toasts script, .notifications-toasts b"
        ).count()
        == 0
    )
    assert page.evaluate("window.injected") is None


def test_refused_stream_stops_with_the_servers_reason(context, site):
    page = context.new_page()
    page.goto(site.url("/test-only/members-only/"))

    expect_state(page, "failed")
    expect(page.locator('.notifications-toast[data-kind="error"] .notifications-toast-text')).to_have_text(
        "The server refused the stream: Log in to subscribe to 'members_only'."
    )
    assert site.open_streams() == 0


def test_server_restart_resets_the_stream_and_shows_every_event_once(context, site):
    page = open_page(context, site.url("/live/"))
    before = [site.publish(f"before {n}") for n in range(2)]
    wait_for_events(page, 2)

    site.server.signal(signal.SIGTERM)
    assert site.server.wait(15) == 0, site.server.output()
    expect_state(page, "reconnecting")
    site.start()

    page.wait_for_function("window.recorded.resets.length >= 1")
    expect_state(page, "live")
    after = [site.publish(f"after {n}") for n in range(2)]
    wait_for_events(page, 4)
    # In-memory history died with the first process: the page is told to
    # reload its state once, then gets every new event.
    assert shown(page) == before + after
    assert page.evaluate("window.recorded.resets") == ["history_unavailable"]
    expect(page.locator("#live-log li[data-reset]")).to_have_count(1)
    expect(page.locator('.notifications-toast[data-kind="error"]')).to_have_count(0)
    site.wait_for_open_streams(1)


def test_silent_server_is_detected_by_the_heartbeat_watchdog(context, site):
    page = open_page(context, site.url("/live/"))
    first = site.publish("before the freeze")
    wait_for_events(page, 1)

    # A stopped process keeps its connections open but sends nothing, like
    # a lost network path: only the missing heartbeats tell.
    site.server.signal(signal.SIGSTOP)
    try:
        expect_state(page, "reconnecting")
    finally:
        site.server.signal(signal.SIGCONT)

    expect_state(page, "live")
    second = site.publish("after the freeze")
    wait_for_events(page, 2)
    assert shown(page) == [first, second]
    assert page.evaluate("window.recorded.resets") == []
    site.wait_for_open_streams(1)


@pytest.mark.parametrize("host", ["127.0.0.1", INSECURE_HOST], ids=["web-locks", "without-web-locks"])
def test_tabs_share_one_connection_and_survive_the_leader_closing(context, site, host):
    pages = [open_page(context, site.url("/live/", host)) for _ in range(3)]
    has_locks = host == "127.0.0.1"
    assert [page.evaluate("'locks' in navigator") for page in pages] == [has_locks] * 3
    site.wait_for_open_streams(1)
    assert sorted(page.evaluate("notifications.role") for page in pages) == ["follower", "follower", "leader"]
    first = site.publish("to three tabs")
    for page in pages:
        wait_for_events(page, 1)

    leader = next(page for page in pages if page.evaluate("notifications.role") == "leader")
    pages.remove(leader)
    leader.close()
    during = site.publish("while the lead changes hands")
    for page in pages:
        wait_for_events(page, 2)
    site.wait_for_open_streams(1)
    after = site.publish("to two tabs")

    for page in pages:
        wait_for_events(page, 3)
        assert shown(page) == [first, during, after]
        expect_state(page, "live")
    assert sorted(page.evaluate("notifications.role") for page in pages) == ["follower", "leader"]


def test_navigation_resumes_where_the_previous_page_stopped(context, site):
    page = open_page(context, site.url("/live/"))
    first = site.publish("on the first page")
    wait_for_events(page, 1)
    assert shown(page) == [first]

    while_away = navigate_publishing_meanwhile(page, site, "/", "while navigating")

    expect_state(page, "live")
    wait_for_events(page, 1)
    assert shown(page) == [while_away]
    expect(page.locator(".notifications-toast")).to_have_text(["Announcementwhile navigating×"])
    last = site.publish("on the second page")
    wait_for_events(page, 2)
    assert shown(page) == [while_away, last]


def test_tab_back_from_navigation_catches_up_and_other_tabs_see_nothing_twice(context, site):
    leader = open_page(context, site.url("/live/"))
    follower = open_page(context, site.url("/live/"))
    assert [leader.evaluate("notifications.role"), follower.evaluate("notifications.role")] == [
        "leader",
        "follower",
    ]
    first = site.publish("to both tabs")
    wait_for_events(leader, 1)
    wait_for_events(follower, 1)

    # The leader relays this event while no page of the follower listens.
    while_away = navigate_publishing_meanwhile(follower, site, "/", "while the follower navigates")

    expect_state(follower, "live")
    wait_for_events(follower, 1)
    last = site.publish("to both tabs again")
    wait_for_events(leader, 3)
    wait_for_events(follower, 2)
    assert shown(leader) == [first, while_away, last]
    assert shown(follower) == [while_away, last]
    site.wait_for_open_streams(1)


def test_admin_pages_show_toasts(context, site):
    site.manage("migrate", "--noinput")
    site.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; User.objects.create_superuser('admin', '', 'secret')",
    )
    page = context.new_page()
    page.goto(site.url("/admin/login/?next=/admin/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("secret")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()
    expect(page).to_have_url(site.url("/admin/"))
    expect_state(page, "live")

    site.publish("Visible in the admin")

    expect(page.locator(".notifications-toast-text")).to_have_text("Visible in the admin")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "admin.png")
