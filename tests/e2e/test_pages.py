"""Every admin page and state, and the portal's, at a laptop's and a phone's width: axe-core
finds no serious or critical violation, no page scrolls sideways, and each is photographed into
test-artifacts/screenshots/ (``<state>-<width>.png``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.common.axe import axe_check, no_sideways_scroll
from tests.e2e.conftest import Deployment
from tests.e2e.test_browser import admin_sign_in, browser, portal_sign_in, shot

__all__ = ["browser"]  # the module's chromium, shared with test_browser's fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("pages")]

WIDTHS = {"laptop": (1366, 768), "phone": (375, 812)}


class Tour:
    def __init__(self, page: Page, deployment: Deployment, width: str) -> None:
        self.page = page
        self.url = deployment.server.url
        self.width = width
        self.seen: list[str] = []

    def go(self, path: str) -> None:
        self.page.goto(f"{self.url}{path}")

    def inspect(self, name: str) -> None:
        what = f"{name} at {self.width} ({self.page.url})"
        axe_check(self.page, what)
        no_sideways_scroll(self.page, what)
        shot(self.page, f"{name}-{self.width}")
        self.seen.append(name)


@pytest.fixture(params=list(WIDTHS))
def tour(
    request: pytest.FixtureRequest, browser: Browser, deployment: Deployment
) -> Iterator[Tour]:
    width, height = WIDTHS[request.param]
    context = browser.new_context(
        viewport={"width": width, "height": height}, is_mobile=request.param == "phone"
    )
    try:
        yield Tour(context.new_page(), deployment, request.param)
    finally:
        context.close()


def test_every_page_is_accessible_and_fits_the_window(
    tour: Tour, deployment: Deployment, browser: Browser
) -> None:
    page, width = tour.page, tour.width
    tour.go("/admin/login")
    tour.inspect("login")
    page.fill("#email", "admin@example.com")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    tour.inspect("login-refused")
    tour.go("/no-such-page")
    tour.inspect("not-found")

    admin_sign_in(page, deployment)
    tour.inspect("dashboard")
    tour.go("/admin/?period=weeks")
    tour.inspect("dashboard-weeks")
    tour.go("/admin/releases")
    tour.inspect("releases")
    tour.go("/admin/releases/acme-erp/4.2.1")
    tour.inspect("release")
    page.click("summary:has-text('Yank')")
    tour.inspect("release-yank-step")
    tour.go("/admin/releases/acme-erp/99.0.0")
    tour.inspect("release-missing")

    tour.go("/admin/releases/new")
    tour.inspect("upload")
    page.click("form#upload-form button[type=submit]")  # nothing filled in
    page.locator("#version-error").wait_for()
    tour.inspect("upload-refused")

    tour.go("/admin/customers")
    tour.inspect("customers")
    tour.go("/admin/customers/initech")
    tour.inspect("customer")
    page.locator("summary:has-text('Revoke')").first.click()
    tour.inspect("customer-revoke-step")
    page.select_option("#license-product", "acme-erp")
    page.fill("#label", f"tour {width}")
    page.click("button:has-text('Issue a license')")
    page.locator("#new-key").wait_for()
    tour.inspect("customer-new-key")

    tour.go("/admin/tokens")
    tour.inspect("tokens")
    page.fill("#token-name", f"CI {width}")
    page.click("button:has-text('Create token')")
    page.locator("#new-token").wait_for()
    tour.inspect("tokens-new-secret")
    page.locator("summary:has-text('Revoke')").first.click()
    tour.inspect("tokens-revoke-step")
    # The confirmation page a one-click post gets (the form's confirm field taken out).
    page.evaluate("document.querySelector('details[open] input[name=confirm]').remove()")
    page.locator("details[open] button[type=submit]").click()
    page.locator(".confirm-page").wait_for()
    tour.inspect("confirm-page")

    tour.go("/admin/users")
    tour.inspect("users")
    page.fill("#user-email", f"tour.{width}@example.com")
    page.click("button:has-text('Add and make a set-password link')")
    admin_link = page.locator("#new-link").inner_text().strip()
    tour.inspect("users-new-link")
    tour.go("/admin/customers/umbrella")
    page.fill("#portal-email", f"buyer.{width}@umbrella.example")
    page.click("button:has-text('Add a portal user')")
    portal_link = page.locator("#new-link").inner_text().strip()
    tour.go("/admin/account")
    tour.inspect("account")
    tour.go("/admin/audit")
    tour.inspect("audit")
    tour.go("/admin/jobs")
    tour.inspect("jobs")
    # The business lists and forms.
    for path, name in [
        ("/admin/customers/new", "customer-new"),
        ("/admin/customers/initech/edit", "customer-edit"),
        ("/admin/customers?q=init", "customers-found"),
        ("/admin/licenses", "licenses"),
        ("/admin/contracts?state=ending", "contracts-ending"),
        ("/admin/lapsed", "lapsed"),
        ("/admin/installations", "installations"),
        ("/admin/audit?page=2", "audit-page-2"),
        ("/admin/products", "products"),
        ("/admin/products/acme-erp", "product"),
        ("/admin/import", "import"),
        ("/admin/emails", "emails"),
        ("/admin/webhooks", "webhooks"),
    ]:
        tour.go(path)
        tour.inspect(name)
    tour.go("/admin/style")
    tour.inspect("style-guide")
    page.locator("summary:has-text('Revoke')").first.click()
    tour.inspect("style-guide-confirm-step")

    # Signed out: the set-password pages, and the portal.
    page.context.clear_cookies()
    public = deployment.proxy.url
    tour.go(admin_link.removeprefix(public))
    tour.inspect("admin-set-password")
    tour.go(portal_link.removeprefix(public))
    tour.inspect("portal-set-password")
    tour.go("/portal/login")
    tour.inspect("portal-login")
    portal_sign_in(page, deployment, "initech")
    tour.inspect("portal-home")
    portal_sign_in(page, deployment, "hooli")
    tour.inspect("portal-lapsed")
    assert len(tour.seen) == 44


def test_a_duplicate_version_is_refused_before_any_file_byte_is_sent(
    browser: Browser, deployment: Deployment, tmp_path: Path
) -> None:
    """Through the proxy, which counts what reaches the server: the pre-flight refuses 5.0.1
    (published already) with every other problem at once, no upload request is made, and the
    file stays chosen for the next try."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    proxy = deployment.proxy
    try:
        page.goto(f"{proxy.url}/admin/login")
        page.fill("#email", "admin@example.com")
        page.fill("#password", "vigor-demo-admin")
        page.click("button[type=submit]")
        page.wait_for_url("**/admin/")
        page.goto(f"{proxy.url}/admin/releases/new")
        artifact = tmp_path / "acme-erp-5.0.1.tar.gz"
        artifact.write_bytes(os.urandom(5 * 1024 * 1024))
        page.fill("#version", "5.0.1")  # published already
        page.fill("#channel", "Not A Channel")
        page.set_input_files("#artifact", str(artifact))
        proxy.received.clear()
        page.click("form#upload-form button[type=submit]")
        page.locator("#version-error").wait_for()
        assert "5.0.1 exists already" in page.locator("#version-error").inner_text()
        assert "lower-case letters" in page.locator("#channel-error").inner_text(), "all at once"
        posts = [(path, size) for method, path, size in proxy.received if method == "POST"]
        assert [path for path, _ in posts] == ["/admin/releases/new/check"], posts
        assert posts[0][1] < 10_000, "only the details were sent"
        assert sum(size for _, _, size in proxy.received) < 10_000, "not one file byte"
        assert page.evaluate("document.getElementById('artifact').files.length") == 1
        assert page.input_value("#version") == "5.0.1", "what was typed is kept"
        assert page.evaluate("document.activeElement.id") == "version", "focus on the first"
        # Corrected, the same chosen file goes up (as a draft: other tests' checks do not see it).
        page.fill("#version", "5.0.2")
        page.fill("#channel", "stable")
        page.check("input[name=draft]")
        page.click("form#upload-form button[type=submit]")
        page.wait_for_url("**/admin/releases/acme-erp/5.0.2", timeout=60_000)
        assert "5 MiB" in page.content()
        uploads = [s for m, p, s in proxy.received if m == "POST" and p == "/admin/releases/new"]
        assert uploads and uploads[0] > 5 * 1024 * 1024
    finally:
        context.close()


def test_a_missing_page_is_an_html_404_in_spanish_for_a_spanish_browser(
    browser: Browser, deployment: Deployment
) -> None:
    context = browser.new_context(locale="es-ES", viewport={"width": 375, "height": 812})
    page = context.new_page()
    try:
        response = page.goto(f"{deployment.server.url}/portal/no-such-page")
        assert response is not None and response.status == 404
        assert response.headers["content-type"].startswith("text/html")
        assert page.locator("html").get_attribute("lang") == "es"
        assert page.locator("h1").inner_text() == "Página no encontrada"
        assert "Ir a la página de inicio" in page.locator("main").inner_text()
        axe_check(page, "the Spanish 404 page")
        no_sideways_scroll(page, "the Spanish 404 page")
        shot(page, "not-found-es-phone")
    finally:
        context.close()
