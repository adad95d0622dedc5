"""
The browser client (notifications.js) in Chromium against a real Daphne:
toasts, reconnection across a restart and a frozen server, one connection
shared by tabs, navigation, payloads shown as text.

Screenshots go to artifacts/ (not committed).
"""

import json
import signal

import pytest
from playwright.sync_api import expect

from .browser import (
    ARTIFACTS,
    INSECURE_HOST,
    expect_state,
    follow_link_held,
    navigate_publishing_meanwhile,
    open_page,
    shown,
    wait_for_events,
)


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
    page.clock.install()
    stream_requests = []
    page.on("request", lambda request: "/sse/subscribe/" in request.url and stream_requests.append(request))
    page.goto(site.url("/test-only/members-only/"))

    expect_state(page, "failed")
    expect(page.locator('.notifications-toast[data-kind="error"] .notifications-toast-text')).to_have_text(
        "The server refused the stream: Log in to subscribe to 'members_only'."
    )
    # EventSource gave up on the 401 without saying why; one fetch read the reason.
    assert [request.resource_type for request in stream_requests] == ["eventsource", "fetch"]
    # Nothing is retried, not even minutes later on the page's clock.
    page.clock.fast_forward("10:00")
    assert page.evaluate("window.recorded.streams") == 1
    expect_state(page, "failed")
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
    # Idle for longer than the watchdog allows: keepalive events keep it open.
    page.wait_for_function("window.recorded.keepalives >= 4")
    assert page.evaluate("window.recorded.streams") == 1
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
    # Counted at once: expect() would wait until a second one expired.
    assert page.locator(".notifications-toast").filter(has_text="while navigating").count() == 1
    last = site.publish("on the second page")
    wait_for_events(page, 2)
    assert shown(page) == [while_away, last]


def test_toasts_on_screen_when_the_page_goes_are_shown_on_the_next_page_once(context, site):
    page = open_page(context, site.url("/live/"))
    kept = site.publish("still on screen")
    dismissed = site.publish("dismissed")
    wait_for_events(page, 2)
    assert shown(page) == [kept, dismissed]
    toasts = page.locator(".notifications-toast")
    toasts.filter(has_text="dismissed").get_by_role("button", name="Dismiss notification").click()
    expect(toasts).to_have_count(1)

    page.goto(site.url("/"))
    expect_state(page, "live")
    # A toast, not an event: the page's own scripts are not told twice.
    # Carried toasts are back before the page is live.
    assert toasts.all_text_contents() == ["Announcementstill on screen×"]
    assert shown(page) == []
    toasts.get_by_role("button", name="Dismiss notification").click()
    page.goto(site.url("/live/"))
    expect_state(page, "live")
    assert toasts.count() == 0
    page.reload()
    expect_state(page, "live")
    assert toasts.count() == 0

    # What another script left under the key is ignored, not fatal. It is
    # left on a page without a client: a page that has one writes the key
    # when it goes.
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    key = "notifications:toasts:" + page.evaluate(
        "JSON.parse(document.getElementById('notifications-config').textContent).url"
    )

    def arrive_after_a_page_without_a_client(stored: str) -> None:
        page.goto(site.url("/test-only/streams/"))
        page.evaluate("([key, stored]) => sessionStorage.setItem(key, stored)", [key, stored])
        page.goto(site.url("/live/"))
        expect_state(page, "live")

    for stored in ("not json", '{"title": "not a list"}', '[null, 3, {"title": "no text, kind or key"}]'):
        arrive_after_a_page_without_a_client(stored)
        assert toasts.count() == 0
    # A toast's time runs while no page shows it: one whose time ran out
    # (or nearly) stays gone.
    for seconds_left, count in ((-5, 0), (0.5, 0), (60, 1)):
        toast = {"title": "Announcement", "text": f"{seconds_left} s left", "kind": "event", "key": "k"}
        expires_at = page.evaluate("Date.now()") + seconds_left * 1000
        arrive_after_a_page_without_a_client(json.dumps([{**toast, "expiresAt": expires_at}]))
        assert toasts.count() == count, seconds_left
    assert toasts.all_text_contents() == ["Announcement60 s left×"]
    assert errors == []


def test_an_event_shown_while_the_page_is_being_replaced_is_toasted_on_the_next_one(context, site):
    # A form's POST is answered, or a link followed: the page on screen
    # still gets events until the next one arrives, then goes with them.
    page = open_page(context, site.url("/live/"))
    other_tab = open_page(context, site.url("/live/"))
    assert page.evaluate("notifications.role") == "leader"
    held = follow_link_held(page, "Home", site.url("/"))

    event_id = site.publish("while the next page loads")
    # The other tab follows the leaving page's connection: the leaving page
    # has shown the event once the other tab has.
    wait_for_events(other_tab, 1)
    assert shown(other_tab) == [event_id]
    held.continue_()

    expect(page).to_have_url(site.url("/"))
    expect_state(page, "live")
    assert page.locator(".notifications-toast").all_text_contents() == [
        "Announcementwhile the next page loads×"
    ]
    assert shown(page) == []


def test_navigation_before_any_event_resumes_from_where_the_stream_started(context, site):
    page = open_page(context, site.url("/live/"))
    # A new stream's first keepalive tells the page its position.
    assert page.evaluate("notifications.lastEventId") is not None

    while_away = navigate_publishing_meanwhile(page, site, "/", "while navigating")

    expect_state(page, "live")
    wait_for_events(page, 1)
    assert shown(page) == [while_away]


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
