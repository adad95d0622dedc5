"""
The admin in Chromium against a real Daphne: toasts on admin pages.

Screenshots go to artifacts/ (not committed).
"""

from playwright.sync_api import expect

from .browser import ARTIFACTS, expect_state, log_in

USERNAME, PASSWORD = "admin", "secret"


def test_admin_pages_show_toasts(context, site):
    site.manage("migrate", "--noinput")
    site.create_superuser(USERNAME, PASSWORD)
    page = context.new_page()
    log_in(page, site, USERNAME, PASSWORD)
    expect(page.locator("#site-name")).to_be_visible()
    expect_state(page, "live")

    site.publish("Visible in the admin")

    expect(page.locator(".notifications-toast-text")).to_have_text("Visible in the admin")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "admin.png")
