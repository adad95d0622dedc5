"""
The client as an ES module (notifications.mjs), in Chromium, on a page of
another origin: a static http.server on a second port serves single-page
apps (tests/spa/) that import the module from Daphne's /sse/client.mjs and
connect with credentials to a server whose ALLOWED_ORIGINS names them; one
of them through the Vue composable of examples/vue/.
"""

import sys

import pytest

from notifications.testing import ServerProcess, free_port

from .browser import Site, log_in
from .conftest import ROOT
from .lifecycle import publish_http

PASSWORD = "a-long-test-password-0123"


@pytest.fixture
def spa(tmp_path):
    """The SPAs' own origin: python -m http.server on another loopback port, serving the checkout."""
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(ROOT), str(port)]
    server = ServerProcess(argv, port).start(tmp_path / "spa.log")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def api_site(tmp_path, server_env, spa, redis_server):
    """
    The demo under Daphne, allowing the SPA's origin with credentials; history
    and layer on Redis, so a restarted server resumes every client exactly.
    """
    site = Site(tmp_path, {**server_env, "SPA_ORIGIN": spa, "REDIS_URL": redis_server.url})
    site.env["DJANGO_SETTINGS_MODULE"] = "tests.spa_settings"
    site.start()
    yield site
    site.stop_all()


def open_spa(context, spa, site, types, page_name="index.html"):
    page = context.new_page()
    page.goto(f"{spa}/tests/spa/{page_name}?server=http://127.0.0.1:{site.port}&types={types}")
    return page


def received(page) -> list[tuple[str, str, dict]]:
    return [(e["type"], e["id"], e["data"]) for e in page.evaluate("window.spa.events")]


def publish(site, event_type: str, text: str) -> str:
    status, body = publish_http(site.port, event_type, {"text": text})
    assert status == 202, body
    return body["id"]


def test_spa_on_another_origin_gets_events_with_credentials_and_survives_a_restart(context, spa, api_site):
    api_site.manage("migrate", "--noinput")
    api_site.create_superuser("admin", PASSWORD)
    # The session cookie of the server's origin goes with withCredentials.
    log_in(context.new_page(), api_site, "admin", PASSWORD)
    page = open_spa(context, spa, api_site, "announcement,members_only")
    page.wait_for_function("window.client?.state === 'live'")

    first = publish(api_site, "announcement", "first")
    private = publish(api_site, "members_only", "members")
    page.wait_for_function("window.spa.events.length >= 2")

    api_site.server.stop()  # SIGTERM: the clean stop sends server_shutdown.
    page.wait_for_function("window.client.state === 'reconnecting'")
    # Published while no server runs (say, by a task worker): kept in Redis.
    while_down = api_site.manage(
        "shell", "-c", "from notifications import publish; print(publish('announcement', {'text': 'down'}))"
    ).split()[-1]
    api_site.start()
    page.wait_for_function("window.spa.events.length >= 3")
    after = publish(api_site, "announcement", "after")
    page.wait_for_function("window.spa.events.length >= 4")

    assert received(page) == [
        ("announcement", first, {"text": "first"}),
        ("members_only", private, {"text": "members"}),
        ("announcement", while_down, {"text": "down"}),
        ("announcement", after, {"text": "after"}),
    ]
    assert page.evaluate("window.spa.resets") == []
    assert page.evaluate("window.spa.failures") == []
    assert page.evaluate("window.spa.states") == ["connecting", "live", "reconnecting", "live"]


def test_refused_type_reports_failed_with_the_reason(context, spa, api_site):
    page = open_spa(context, spa, api_site, "members_only")

    page.wait_for_function("window.client?.state === 'failed'")

    assert page.evaluate("window.spa.failures") == [
        {"status": 401, "reason": "Log in to subscribe to 'members_only'."}
    ]
    assert page.evaluate("window.spa.events") == []


def test_vue_composable_follows_the_stream_and_closes_on_unmount(context, spa, api_site):
    page = open_spa(context, spa, api_site, "announcement", "vue.html")
    page.wait_for_function("window.composable?.state.value === 'live'")
    api_site.wait_for_open_streams(1)

    event_id = publish(api_site, "announcement", "from vue")
    page.wait_for_function("window.composable.lastEvent.value !== null")

    assert page.evaluate("window.composable.lastEvent.value") == {
        "type": "announcement",
        "data": {"text": "from vue"},
        "id": event_id,
    }
    page.evaluate("window.unmount()")
    assert page.evaluate("window.composable.state.value") == "closed"
    api_site.wait_for_open_streams(0)
