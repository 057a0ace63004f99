"""Pages in a real headless Chromium against a live demo server.

Screenshots land in test-artifacts/screenshots/ (named in the README).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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


def test_admin_uploads_a_release_through_the_form_and_it_is_offered(
    page: Page, deployment: Deployment, tmp_path: Path
) -> None:
    admin_sign_in(page, deployment)
    shot(page, "dashboard")
    page.goto(f"{deployment.server.url}/admin/customers")
    assert "Hooli" in page.content()
    shot(page, "customers")
    page.goto(f"{deployment.server.url}/admin/releases/new")
    shot(page, "upload-form")
    artifact = tmp_path / "acme-erp-5.1.0.tar.gz"
    artifact.write_bytes(os.urandom(2 * 1024 * 1024))
    page.fill("#version", "5.1.0")
    page.select_option("#kind", "update")
    page.fill("#notes", "Quarter-end closing in half the time.")
    page.set_input_files("#artifact", str(artifact))
    page.click("form#upload-form button[type=submit]")
    page.wait_for_url("**/admin/releases/acme-erp/5.1.0")
    assert "acme-erp 5.1.0 published." in page.content()
    shot(page, "release-page")
    body = json.dumps(
        {
            "product": "acme-erp",
            "version": "5.0.1",
            "platform": "linux-x86_64",
            "installation_id": "browser-test-installation",
            "nonce": secrets.token_hex(16),
        }
    ).encode()
    request = urllib.request.Request(
        f"{deployment.server.url}/api/v1/check",
        data=body,
        headers={
            "Authorization": f"License {deployment.licenses['initech']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["signed"]["update"]["version"] == "5.1.0"


def test_lapsed_customer_sees_the_renewal_banner(page: Page, deployment: Deployment) -> None:
    page.goto(f"{deployment.server.url}/portal/login")
    page.fill("#key", deployment.licenses["hooli"])
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/")
    banner = page.locator(".banner")
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
