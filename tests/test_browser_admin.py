"""
The admin in Chromium against a real Daphne whose embedded django-tasks-db
worker runs the tasks: toasts on admin pages, and the report action answered
at once, its run brought to its final state in place on the change list,
and one toast when it completes.

Screenshots go to artifacts/ (not committed).
"""

import re

import pytest
from playwright.sync_api import expect

from .browser import ARTIFACTS, Site, expect_state, log_in

USERNAME, PASSWORD = "admin", "secret"
# Long enough that the run is still going when the change list is shown;
# the waits below are bounded well beyond it.
SECTIONS = 5
SECTION_SECONDS = 1
RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def admin_site(tmp_path, server_env):
    # Migrate before the server starts: its embedded worker reads the queue at once.
    site = Site(tmp_path, {**server_env, "DEMO_SECTION_SECONDS": str(SECTION_SECONDS)})
    site.manage("migrate", "--noinput")
    site.create_superuser(USERNAME, PASSWORD)
    site.manage(
        "shell",
        "-c",
        f"from project.models import Report; Report.objects.create(title='Q3', sections={SECTIONS})",
    )
    site.start()
    yield site
    site.stop_all()


def test_admin_pages_show_toasts(context, admin_site):
    page = context.new_page()
    log_in(page, admin_site, USERNAME, PASSWORD)
    expect(page.locator("#site-name")).to_be_visible()
    expect_state(page, "live")

    admin_site.publish("Visible in the admin")

    expect(page.locator(".notifications-toast-text")).to_have_text("Visible in the admin")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "admin.png")


def test_report_action_runs_in_the_background_and_the_row_follows_it_live(context, admin_site):
    page = context.new_page()
    log_in(page, admin_site, USERNAME, PASSWORD, "/admin/project/report/")
    expect_state(page, "live")

    page.get_by_role("row", name=re.compile("Q3")).get_by_role("checkbox").check()
    page.locator("select[name=action]").select_option(label="Generate report")
    page.get_by_role("button", name="Run", exact=True).click()

    # The action answered at once: the task runs list shows the run still going.
    expect(page).to_have_url(admin_site.url("/admin/project/taskrun/"))
    status = page.locator("[data-field=status]")
    expect(status).to_have_count(1)
    rendered = status.evaluate("cell => { window.renderedCell = cell; return cell.textContent; }")
    assert rendered in ("queued", "running"), rendered
    expect_state(page, "live")
    admin_site.wait_for_open_streams(1)

    # No reload: the very cell rendered with the page reaches the final state.
    expect(status).to_have_text("succeeded", timeout=RUN_TIMEOUT_MS)
    assert page.evaluate("window.renderedCell === document.querySelector('[data-field=status]')")
    expect(page.locator("[data-field=progress]")).to_have_text(f"100% · Section {SECTIONS} of {SECTIONS}")
    expect(page.get_by_role("progressbar", name="Progress of generate_report")).to_have_js_property(
        "value", 100
    )
    expect(page.locator("[data-field=outcome]")).to_have_text(f"Report “Q3” is ready: {SECTIONS} sections.")
    expect(page.locator("[data-field=duration]")).to_have_text(re.compile(r"^\d+\.\d s$"))

    toast = page.locator(".notifications-toast").filter(has_text="Report “Q3” is ready")
    expect(toast).to_have_count(1)
    expect(toast.locator(".notifications-toast-title")).to_have_text("generate_report finished")
    expect(toast).to_have_attribute("data-kind", "success")
    # The run's completion reached this staff page twice (its type's topic and
    # the user's private topic) and was toasted once.
    page.wait_for_function("window.recorded.types.filter((type) => type === 'task_completed').length >= 2")
    # Counted at once: expect() would wait until a second toast expired.
    assert toast.count() == 1
    assert page.evaluate("window.recorded.streams") == 1
    admin_site.wait_for_open_streams(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "admin-task-completed.png")
