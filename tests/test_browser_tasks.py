"""
The demo as an ordinary user sees it, in Chromium against a real Daphne with
the demo's defaults (database history, embedded task worker): the login
page, a report started from /tasks/ followed by a progress bar, a toast that
says what the run did (success and failure look different) and links to the
run, and the user's task toasts on the home and live pages.

Screenshots go to artifacts/ (not committed).
"""

import json
import re

import pytest
from playwright.sync_api import expect

from .browser import ARTIFACTS, Site, expect_state, follow_link_held, shown, wait_for_events

USERNAME, PASSWORD = "member", "a-long-test-password-0123"
SECTIONS = 4
RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def demo(tmp_path, server_env):
    env = {
        **server_env,
        "NOTIFICATIONS_HISTORY_BACKEND": "notifications.history.database.DatabaseHistory",
        "DEMO_SECTION_SECONDS": "0.5",
        "DJANGO_USER_PASSWORD": PASSWORD,
    }
    site = Site(tmp_path, env)
    site.manage("migrate", "--noinput")
    site.manage("adduser", USERNAME)
    site.manage(
        "shell",
        "-c",
        "from project.models import Report; "
        f"Report.objects.create(title='Q3', sections={SECTIONS}); "
        "Report.objects.create(title='Empty', sections=0)",
    )
    site.start()
    yield site
    site.stop_all()


def log_in(page, site: Site, path: str, public: bool = False) -> None:
    """
    Go to ``path`` logged out, log in on the site's own login page (sent
    there, or for a ``public`` page through the "Log in" link), and land back.
    """
    page.goto(site.url(path))
    if public:
        page.get_by_role("link", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "login.png")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(site.url(path))
    expect_state(page, "live")


def generate(page, label: str) -> None:
    page.get_by_label("Generate a report").select_option(label=label)
    page.get_by_role("button", name="Generate").click()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    expect_state(page, "live")


def test_an_ordinary_user_follows_a_report_to_a_toast_that_says_what_it_did(context, demo):
    page = context.new_page()
    log_in(page, demo, "/tasks/")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    generate(page, f"Q3 ({SECTIONS} sections)")

    bar = page.get_by_role("progressbar", name="Progress of generate_report")
    expect(bar).to_have_count(1)
    expect(bar).to_have_js_property("value", 100, timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".task-progress-text")).to_have_text(f"100% · Section {SECTIONS} of {SECTIONS}")
    expect(page.locator("[data-field=outcome]")).to_have_text(f"Report “Q3” is ready: {SECTIONS} sections.")
    toast = page.locator(".notifications-toast[data-kind=success]")
    expect(toast).to_have_count(1)
    expect(toast.locator(".notifications-toast-title")).to_have_text("generate_report finished")
    expect(toast.locator(".notifications-toast-text")).to_have_text(
        f"Report “Q3” is ready: {SECTIONS} sections. View"
    )
    page.screenshot(path=ARTIFACTS / "task-succeeded.png")

    toast.get_by_role("link", name="View").click()
    expect(page).to_have_url(re.compile(r"/tasks/[^/]+/$"))
    expect(page.get_by_role("heading", name="generate_report")).to_be_visible()
    expect(page.locator("[data-field=status]")).to_have_text("succeeded")
    expect(page.locator("[data-field=outcome]")).to_have_text(f"Report “Q3” is ready: {SECTIONS} sections.")
    page.screenshot(path=ARTIFACTS / "task-run-page.png")


def test_a_failed_run_toasts_its_error_in_the_failure_style(context, demo):
    page = context.new_page()
    log_in(page, demo, "/tasks/")

    generate(page, "Empty (0 sections)")

    toast = page.locator(".notifications-toast[data-kind=failure]")
    expect(toast).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(toast.locator(".notifications-toast-title")).to_have_text("generate_report failed")
    expect(toast.locator(".notifications-toast-text")).to_have_text("Report 'Empty' has no sections. View")
    expect(page.locator("[data-field=outcome]")).to_have_text("EmptyReport: Report 'Empty' has no sections.")
    # Success and failure differ in colour, not only in words.
    border = toast.evaluate("toast => getComputedStyle(toast).borderLeftColor")
    assert border == "rgb(248, 113, 113)", border
    page.screenshot(path=ARTIFACTS / "task-failed.png")


def test_the_users_task_toasts_appear_on_the_home_and_live_pages(context, demo):
    home = context.new_page()
    log_in(home, demo, "/", public=True)
    live = context.new_page()
    live.goto(demo.url("/live/"))
    expect_state(live, "live")

    # Queued from another process; the server's embedded worker runs it.
    demo.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from project.models import Report; "
        "from project.tasks import generate_report; "
        f"member = User.objects.get(username={USERNAME!r}); "
        "generate_report.enqueue(Report.objects.get(title='Q3').pk, enqueued_by=member.pk)",
    )

    for page in (home, live):
        toast = page.locator(".notifications-toast[data-kind=success]")
        expect(toast).to_have_count(1, timeout=RUN_TIMEOUT_MS)
        expect(toast).to_contain_text(f"Report “Q3” is ready: {SECTIONS} sections.")
    home.screenshot(path=ARTIFACTS / "home-task-toast.png")
    # The live page's log shows the user's own events, payloads as text.
    completed = live.locator("#live-log li").filter(has_text="task_completed")
    expect(completed).to_have_count(1)
    expect(completed).to_contain_text('"summary":"Report “Q3” is ready: 4 sections."')
    live.screenshot(path=ARTIFACTS / "live-task-toast.png")


def test_a_run_is_toasted_once_when_its_two_copies_reach_two_pages(context, demo):
    # A watcher's own run arrives on its type's topic and on the user's
    # private one; the first copy can come as the page is being replaced.
    page = context.new_page()
    log_in(page, demo, "/tasks/")
    other_tab = context.new_page()
    other_tab.goto(demo.url("/tasks/"))
    expect_state(other_tab, "live")
    member = demo.manage(
        "shell",
        "--no-imports",
        "-c",
        f"from django.contrib.auth.models import User; print(User.objects.get(username={USERNAME!r}).pk)",
    ).strip()
    run = {
        "task_id": "run-1",
        "task_name": "generate_report",
        "status": "failed",
        "enqueued_by": int(member),
        "error": {"class": "project.tasks.EmptyReport", "message": "Report 'Empty' has no sections."},
        "summary": "Report 'Empty' has no sections.",
    }

    def publish_copy():
        demo.manage("publish", "task_completed", json.dumps(run), "--user", member)

    held = follow_link_held(page, "Home", demo.url("/"))
    publish_copy()
    wait_for_events(other_tab, 1)
    held.continue_()
    expect(page).to_have_url(demo.url("/"))
    expect_state(page, "live")
    publish_copy()
    wait_for_events(page, 1)

    assert len(shown(page)) == 1, "the second copy reached the new page"
    toast = page.locator(".notifications-toast")
    # Counted at once: expect() would wait until a second toast expired.
    assert toast.count() == 1
    expect(toast).to_have_attribute("data-kind", "failure")
    expect(toast.locator(".notifications-toast-text")).to_have_text("Report 'Empty' has no sections. View")
