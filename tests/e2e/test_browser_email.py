"""E-mail end to end: a live demo server and a real ``vigor worker`` sending to an SMTP server the
test starts (aiosmtpd), and a portal user who forgot their password, in headless Chromium,
following the link from the e-mail the worker sent."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from server.demo import PORTAL_EMAIL, PORTAL_PASSWORD
from server.demo.mailcatcher import Caught, MailCatcher
from tests.common.live import LiveServer
from tests.e2e.test_browser import browser, page, shot

__all__ = ["browser", "page"]  # the fixtures, shared with test_browser.py

pytestmark = pytest.mark.browser


class Mailing:
    """The live server, its worker and the SMTP server they send to."""

    def __init__(self, base: Path) -> None:
        self.catcher = MailCatcher(base / "mail").start()
        self.server = LiveServer(base, public_url="")
        self.server.env["VIGOR_PUBLIC_URL"] = self.server.url
        self.server.env["VIGOR_SMTP_URL"] = self.catcher.url
        self.server.env["VIGOR_VENDOR_NAME"] = "Acme Software"
        result = self.server.vigor("demo", "--no-serve")
        assert result.returncode == 0, result.stderr
        self.server.start()
        self.worker = self.server.start_worker(base / "worker.log")

    def wait_for(self, recipient: str, subject: str, timeout: float = 60) -> Caught:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.catcher.to(recipient) if subject in m.subject]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no e-mail to {recipient} about {subject!r} within {timeout} s")

    def stop(self) -> None:
        self.worker.terminate()
        self.worker.wait(timeout=30)
        self.server.stop()
        self.catcher.stop()


@pytest.fixture(scope="module")
def mailing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailing]:
    deployed = Mailing(tmp_path_factory.mktemp("vigor-email"))
    yield deployed
    deployed.stop()


def test_forgot_password_end_to_end_with_the_link_from_the_email(
    browser: Browser, page: Page, mailing: Mailing
) -> None:
    base = mailing.server.url
    page.goto(f"{base}/portal/login")
    page.click("a[href$='/portal/forgot-password']")
    page.fill("#email", PORTAL_EMAIL.upper())
    page.click("main button[type=submit]")
    assert page.locator("#forgot-sent").is_visible()
    shot(page, "portal-forgot-password")

    # The demo's portal user is at Hooli, whose language is Spanish.
    mail = mailing.wait_for(PORTAL_EMAIL, "contraseña nueva")
    assert mail.subject.startswith("Acme Software: ")
    found = re.search(rf"{re.escape(base)}/portal/set-password/\S+", mail.part("plain"))
    assert found, mail.part("plain")
    link = found.group(0)
    assert link in mail.part("html")

    page.goto(link)
    page.fill("#password", "a brand new password")
    page.fill("#confirm", "a brand new password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/portal/**")
    assert "/set-password/" not in page.url
    page.context.clear_cookies()

    page.goto(link)  # single use
    assert page.locator("[role=alert]").is_visible()
    assert page.locator("#password").count() == 0

    page.goto(f"{base}/portal/login")  # the old password is gone, the new one signs in
    page.fill("#user-email", PORTAL_EMAIL)
    page.fill("#user-password", PORTAL_PASSWORD)
    page.click("section[aria-labelledby=with-account] button[type=submit]")
    assert page.locator("#account-error").is_visible()
    page.fill("#user-email", PORTAL_EMAIL)
    page.fill("#user-password", "a brand new password")
    page.click("section[aria-labelledby=with-account] button[type=submit]")
    page.wait_for_url("**/portal/**")
    assert "/login" not in page.url


def test_an_unknown_address_gets_the_same_page_and_no_email(page: Page, mailing: Mailing) -> None:
    known_before = len(mailing.catcher.to(PORTAL_EMAIL))
    answers = []
    for address in ("nobody@nowhere.example", PORTAL_EMAIL):
        page.goto(f"{mailing.server.url}/portal/forgot-password")
        page.fill("#email", address)
        page.click("main button[type=submit]")
        answers.append(page.locator("main").inner_text())
    assert answers[0] == answers[1]
    deadline = time.monotonic() + 60  # the worker sends the known address its link...
    while len(mailing.catcher.to(PORTAL_EMAIL)) == known_before:
        assert time.monotonic() < deadline, "no e-mail to the known address"
        time.sleep(0.2)
    assert mailing.catcher.to("nobody@nowhere.example") == []  # ...and no one else anything


def test_the_admin_email_log_shows_what_the_worker_sent(page: Page, mailing: Mailing) -> None:
    base = mailing.server.url
    page.goto(f"{base}/admin/login")
    page.fill("#email", "admin@example.com")
    page.fill("#password", "vigor-demo-admin")
    page.click("main button[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(f"{base}/admin/emails")
    page.fill("#to", "ops@acme.example")
    page.click("button:has-text('Send test')")
    mailing.wait_for("ops@acme.example", "Test e-mail")
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{base}/admin/emails?state=sent")
        if "ops@acme.example" in page.locator("#emails").inner_text():
            break
        assert time.monotonic() < deadline, "the log says it was sent"
        time.sleep(0.5)
    shot(page, "admin-emails")
