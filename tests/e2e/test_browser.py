"""Pages in a real headless Chromium against a live demo server.

Screenshots land in test-artifacts/screenshots/ (named in the README).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.common.live import ROOT
from tests.e2e.conftest import Deployment

pytestmark = pytest.mark.browser
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is required: `bash scripts/system-deps` installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def admin_sign_in(page: Page, deployment: Deployment) -> None:
    page.goto(f"{deployment.server.url}/admin/login")
    page.fill("#email", "admin@example.com")
    page.fill("#password", "vigor-demo-admin")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")


def check(deployment: Deployment, license_key: str, version: str) -> dict[str, Any]:
    """``POST /api/v1/check`` as an agent on ``version`` would send it; the signed part."""
    body = json.dumps(
        {
            "product": "acme-erp",
            "version": version,
            "platform": "linux-x86_64",
            "installation_id": "browser-test-" + version.replace(".", "-"),
            "nonce": secrets.token_hex(16),
        }
    ).encode()
    request = urllib.request.Request(
        f"{deployment.server.url}/api/v1/check",
        data=body,
        headers={"Authorization": f"License {license_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        signed: dict[str, Any] = json.load(response)["signed"]
        return signed


def test_admin_uploads_200_mb_as_a_draft_publishes_it_and_it_is_offered(
    page: Page, deployment: Deployment, tmp_path: Path
) -> None:
    admin_sign_in(page, deployment)
    assert page.locator("svg").count() > 0, "the dashboard draws its charts"
    shot(page, "dashboard")
    page.goto(f"{deployment.server.url}/admin/releases/new")
    shot(page, "upload-form")
    artifact = tmp_path / "acme-erp-5.1.0.tar.gz"
    digest = hashlib.sha256()
    with artifact.open("wb") as out:
        for _ in range(200):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    page.fill("#version", "5.1.0")
    page.select_option("#kind", "update")
    page.fill("#notes", "Quarter-end closing in **half** the time.")
    page.set_input_files("#artifact", str(artifact))
    page.check("input[name=draft]")
    page.click("form#upload-form button[type=submit]")
    # A selector, not wait_for_function: the page's policy forbids the eval that would need.
    page.wait_for_selector('#progress:not([hidden]):not([value="0"])', timeout=60_000)
    page.wait_for_url("**/admin/releases/acme-erp/5.1.0", timeout=300_000)
    assert "acme-erp 5.1.0 saved as a draft." in page.content()
    assert digest.hexdigest() in page.content()
    assert "200 MiB" in page.content()
    assert check(deployment, deployment.licenses["initech"], "5.0.1")["update"] is None, (
        "a draft is not offered"
    )
    page.click("button:has-text('Publish')")
    page.wait_for_load_state()
    assert "acme-erp 5.1.0 published." in page.content()
    assert page.locator(".notes strong").inner_text() == "half"
    shot(page, "release-page")
    update = check(deployment, deployment.licenses["initech"], "5.0.1")["update"]
    assert update["version"] == "5.1.0"
    assert update["download"] == {**update["download"], "size": 200 * 1024 * 1024}
    assert update["download"]["sha256"] == digest.hexdigest()


def test_a_refused_upload_shows_the_error_on_the_form_with_the_input_kept(
    page: Page, deployment: Deployment, tmp_path: Path
) -> None:
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/releases/new")
    artifact = tmp_path / "again.tar.gz"
    artifact.write_bytes(os.urandom(1024 * 1024))
    page.fill("#version", "5.0.1")  # published already
    page.fill("#notes", "Notes the user typed")
    page.set_input_files("#artifact", str(artifact))
    page.click("form#upload-form button[type=submit]")
    error = page.locator("#version-error")
    error.wait_for()
    assert "already" in error.inner_text()
    assert page.input_value("#notes") == "Notes the user typed"
    assert page.input_value("#version") == "5.0.1"


def test_one_upload_carries_a_file_for_each_platform(
    page: Page, deployment: Deployment, tmp_path: Path
) -> None:
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/releases/new")
    files = {"linux-x86_64": os.urandom(300_000), "windows-x86_64": os.urandom(200_000)}
    page.fill("#version", "6.0.0")
    page.select_option("#kind", "version")
    page.check("input[name=draft]")  # a draft: the other tests' checks do not see it
    page.fill("#platform", "linux-x86_64")
    page.click("#add-file")
    assert page.evaluate("document.activeElement.id") == "platform-2", "focus moves to the new row"
    page.keyboard.type("windows-x86_64")
    for n, (platform, content) in enumerate(files.items(), start=1):
        path = tmp_path / f"acme-6.0.0-{platform}.bin"
        path.write_bytes(content)
        page.set_input_files("#artifact" if n == 1 else f"#artifact-{n}", str(path))
    page.click("form#upload-form button[type=submit]")
    page.wait_for_url("**/admin/releases/acme-erp/6.0.0", timeout=60_000)
    html = page.content()
    assert "acme-erp 6.0.0 saved as a draft." in html
    for platform, content in files.items():
        assert platform in html and hashlib.sha256(content).hexdigest() in html


def test_admin_issues_a_license_and_it_works_at_once(page: Page, deployment: Deployment) -> None:
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/customers")
    page.click("a:has-text('Initech')")
    page.select_option("#license-product", "acme-erp")
    page.fill("#label", "second site")
    page.click("button:has-text('Issue a license')")
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("vgl_")
    shot(page, "customer-page")
    assert check(deployment, key, "4.0.0")["entitlement"]["status"] in {"active", "expiring"}
    page.reload()
    assert key not in page.content(), "the key is shown once"


def test_admin_yanks_a_release_and_installations_on_it_are_told(
    page: Page, deployment: Deployment
) -> None:
    assert check(deployment, deployment.licenses["initech"], "4.2.0")["notices"] == []
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/releases/acme-erp/4.2.0")
    page.click("summary:has-text('Yank')")  # the confirm step: what will happen, then the button
    page.fill("#reason", "corrupts purchase orders with more than 99 lines")
    page.fill("#recommended", "4.2.1")
    page.click("button:has-text('Yank acme-erp 4.2.0')")
    page.wait_for_load_state()
    assert "acme-erp 4.2.0 yanked." in page.content()
    notices = check(deployment, deployment.licenses["initech"], "4.2.0")["notices"]
    assert [n["code"] for n in notices] == ["yanked"]
    assert "corrupts purchase orders" in notices[0]["message"] and "4.2.1" in notices[0]["message"]


def portal_sign_in(page: Page, deployment: Deployment, customer: str) -> None:
    """With the keyboard only: the key field has focus, Enter submits."""
    page.goto(f"{deployment.server.url}/portal/login")
    page.focus("#key")
    page.keyboard.type(deployment.licenses[customer])
    page.keyboard.press("Enter")
    page.wait_for_url("**/portal/")


def test_lapsed_customer_sees_the_renewal_banner(page: Page, deployment: Deployment) -> None:
    portal_sign_in(page, deployment, "hooli")
    banner = page.locator("#maintenance")
    assert banner.is_visible()
    assert "Renovar el mantenimiento" in banner.inner_text()  # Hooli reads Spanish
    shot(page, "portal-lapsed")


def test_a_post_without_csrf_token_is_refused(deployment: Deployment) -> None:
    request = urllib.request.Request(
        f"{deployment.server.url}/admin/login",
        method="POST",
        data=b"email=admin%40example.com&password=vigor-demo-admin",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400


def test_pages_fit_a_phone(browser: Browser, deployment: Deployment) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    page = context.new_page()
    try:

        def fits(what: str) -> None:
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{what} scrolls sideways by {overflow}px on a phone"

        portal_sign_in(page, deployment, "initech")
        fits("the portal")
        shot(page, "portal-phone")
        admin_sign_in(page, deployment)
        for path in (
            "/admin/",
            "/admin/releases/new",
            "/admin/customers/initech",
            "/admin/users",
            "/admin/account",
        ):
            page.goto(f"{deployment.server.url}{path}")
            fits(path)
        page.goto(f"{deployment.server.url}/admin/")
        shot(page, "dashboard-phone")
    finally:
        context.close()


def test_admin_adds_a_portal_user_who_sets_a_password_and_lands_on_the_portal(
    browser: Browser, page: Page, deployment: Deployment
) -> None:
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/customers/umbrella")
    page.fill("#portal-email", "Buyer@Umbrella.example")
    page.click("button:has-text('Add a portal user')")
    link = page.locator("#new-link").inner_text().strip()
    assert link.startswith(f"{deployment.proxy.url}/portal/set-password/"), "the public address"
    shot(page, "customer-portal-user")
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # the customer's own
    try:
        person = context.new_page()
        person.goto(link)
        assert "buyer@umbrella.example" in person.locator("#password-hint").inner_text()
        person.fill("#password", "umbrella buyer 2026")
        person.fill("#confirm", "umbrella buyer 2026")
        person.click("button:has-text('Save and sign in')")
        person.wait_for_url("**/portal/licenses/*/")
        assert person.locator("h1").inner_text() == "Umbrella Corporation · Acme ERP"
        assert person.locator("table a[download]").count() > 0, "releases to download"
        shot(person, "portal-user")
        person.goto(link)
        assert "was used already" in person.locator("[role=alert]").inner_text()
        person.goto(f"{deployment.proxy.url}/portal/login")
        assert person.get_by_label("License key", exact=True).is_visible(), "two ways in, one page"
        assert person.get_by_label("Email", exact=True).is_visible()
        shot(person, "portal-sign-in")
    finally:
        context.close()
    page.goto(f"{deployment.server.url}/admin/customers/umbrella")
    assert link not in page.content(), "the link is shown once"
    assert "buyer@umbrella.example" in page.locator("#portal-users ~ table").inner_text()


def test_admin_adds_a_user_who_sets_a_password_and_changes_it_on_their_account_page(
    browser: Browser, page: Page, deployment: Deployment
) -> None:
    admin_sign_in(page, deployment)
    page.click("nav a:has-text('Users')")
    page.fill("#user-email", "Release.Manager@example.com")
    page.select_option("#user-role", "publisher")
    page.click("button:has-text('Add and make a set-password link')")
    link = page.locator("#new-link").inner_text().strip()
    assert link.startswith(f"{deployment.proxy.url}/admin/set-password/"), "the public address"
    row = page.locator("tr", has_text="release.manager@example.com")
    assert "invited, no password yet" in row.inner_text()
    shot(page, "admin-users")
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # their own browser
    try:
        person = context.new_page()
        person.goto(link.replace(deployment.proxy.url, deployment.server.url))
        person.fill("#password", "release manager 2026")
        person.fill("#confirm", "release manager 2026")
        person.click("button:has-text('Save and sign in')")
        person.wait_for_url("**/admin/")
        assert "release.manager@example.com · publisher" in person.locator(".who").inner_text()
        person.click(".who")
        person.fill("#current-password", "release manager 2026")
        person.fill("#new-password", "release manager 2027")
        person.fill("#confirm-password", "release manager 2027")
        person.click("button:has-text('Change password')")
        assert "Password changed" in person.locator("[role=status]").inner_text()
        shot(person, "admin-account")
    finally:
        context.close()


def test_a_copied_portal_key_cookie_is_dead_after_signing_out(
    browser: Browser, page: Page, deployment: Deployment
) -> None:
    portal_sign_in(page, deployment, "initech")
    thief = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        thief.add_cookies(page.context.cookies())
        stolen = thief.new_page()
        stolen.goto(f"{deployment.server.url}/portal/")
        assert stolen.url.endswith("/portal/"), "the copy works while the session is open"
        page.click("form[action$='/portal/logout'] button")
        page.wait_for_url("**/portal/login")
        stolen.goto(f"{deployment.server.url}/portal/")
        assert stolen.url.endswith("/portal/login"), "a copy of the old cookie no longer works"
    finally:
        thief.close()


def test_no_page_breaks_the_content_security_policy(
    browser: Browser, deployment: Deployment
) -> None:
    """The main pages, signed in and out, render without a single CSP violation: Chromium logs
    every refused inline script, style or handler to the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(f"{page.url}: {message.text}")
            if message.type in {"error", "warning"}
            else None
        ),
    )
    page.on("pageerror", lambda error: complaints.append(f"{page.url}: {error}"))
    visited: list[str] = []

    def visit(path: str) -> None:
        response = page.goto(f"{deployment.server.url}{path}")
        assert response is not None
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
        visited.append(path)

    try:
        for path in ("/admin/login", "/portal/login", "/no-such-page"):
            visit(path)
        admin_sign_in(page, deployment)
        for path in (
            "/admin/",
            "/admin/?period=weeks",
            "/admin/releases",
            "/admin/releases/acme-erp/4.2.0",
            "/admin/customers",
            "/admin/customers/initech",
            "/admin/audit",
            "/admin/jobs",
            "/admin/tokens",
            "/admin/users",
            "/admin/account",
            "/admin/releases/new",
        ):
            visit(path)
        page.click("#add-file")  # upload.js runs under the policy too
        portal_sign_in(page, deployment, "hooli")  # a lapsed customer: the renewal banner
        visit("/portal/")
        portal_sign_in(page, deployment, "initech")
        visit("/portal/")
    finally:
        context.close()
    assert len(visited) == 17
    # A missing favicon and the 404 page's own status are the console errors expected.
    assert not [c for c in complaints if "Failed to load resource" not in c], complaints
