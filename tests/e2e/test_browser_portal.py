"""The customer portal in a real headless Chromium, at a laptop's width and a phone's: every page
passes axe-core with no serious or critical violation, none scrolls sideways, the Download button
is on screen at 375 px, and each page state is saved as a screenshot
(test-artifacts/screenshots/portal-*.png) for a person to look at.

The demo runs branded (a vendor name, a dark green, a support contact), so that axe judges the
vendor's colour too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from server.demo.data import PORTAL_EMAIL, PORTAL_PASSWORD
from tests.common.axe import axe_check, no_sideways_scroll
from tests.common.live import LiveServer, TamperingProxy
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser-portal")]

WIDTHS = {"laptop": (1366, 768), "phone": (375, 812)}
BRAND = {
    "VIGOR_VENDOR_NAME": "Acme Software",
    "VIGOR_VENDOR_COLOR": "#0b5a2a",
    "VIGOR_SUPPORT_EMAIL": "support@acme.example",
    "VIGOR_SUPPORT_URL": "https://acme.example/support",
}


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A branded demo server: its URL and the demo's license keys."""
    base = tmp_path_factory.mktemp("vigor-portal")
    proxy = TamperingProxy()
    server = LiveServer(base, public_url=proxy.url)
    server.env.update(BRAND)
    proxy.upstream = server.url
    result = server.vigor("demo", "--no-serve")
    assert result.returncode == 0, result.stderr
    second = server.vigor(  # Hooli's portal user then chooses between two licenses
        "license", "issue", "--customer", "hooli", "--product", "acme-erp", "--label", "lab"
    )
    assert second.returncode == 0, second.stderr
    keys = json.loads((base / "instance" / "demo-licenses.json").read_text())
    server.start()
    proxy.start()
    try:
        yield server.url, keys
    finally:
        proxy.stop()
        server.stop()


def _key_sign_in(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/portal/login")
    page.fill("#key", key)
    page.click("form:has(#key) button[type=submit]")
    page.wait_for_url("**/portal/")


def _user_sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/portal/login")
    page.fill("#user-email", PORTAL_EMAIL)
    page.fill("#user-password", PORTAL_PASSWORD)
    page.click("form:has(#user-email) button[type=submit]")
    page.wait_for_url("**/portal/**")


def _look(page: Page, name: str, width: str) -> None:
    """The checks every page state gets, and its screenshot."""
    page.wait_for_load_state("load")
    no_sideways_scroll(page)
    axe_check(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"portal-{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_portal_page_is_accessible_fits_and_is_photographed(
    browser: Browser,  # noqa: F811 - the fixture
    portal: tuple[str, dict[str, str]],
    width: str,
) -> None:
    url, keys = portal
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, is_mobile=width == "phone")
    page = context.new_page()
    try:
        page.goto(f"{url}/portal/login")
        assert page.title() == "Sign in to your downloads · Acme Software"
        _look(page, "sign-in", width)
        page.fill("#key", "vgl_not_a_key")
        page.click("form:has(#key) button[type=submit]")
        assert "That license key is not valid." in page.locator("#key-error").inner_text()
        _look(page, "sign-in-refused", width)

        for customer, state in (
            ("initech", "active"),
            ("umbrella", "expiring"),
            ("vandelay", "never-covered"),
        ):
            _key_sign_in(page, url, keys[customer])
            assert page.locator(f"#maintenance.{state}").is_visible()
            header = page.locator("header").inner_text()
            assert "Signed in as" in header and "Sign out" in header
            _look(page, f"{state}", width)
            if state != "never-covered":
                download = page.locator("a.download").first
                box = download.bounding_box()
                assert box is not None and download.is_visible()
                assert box["x"] >= 0 and box["x"] + box["width"] <= w, "Download is on screen"
            else:
                assert page.get_by_role("link", name="Buy maintenance").is_visible()
                assert page.get_by_role("link", name="Renew maintenance").count() == 0
            page.click("header button:has-text('Sign out')")
            page.wait_for_url("**/portal/login")

        page.goto(f"{url}/portal/set-password/not-a-link")
        assert "no es válido" in page.locator("[role=alert]").inner_text() or (
            "not valid" in page.locator("[role=alert]").inner_text()
        )
        _look(page, "set-password-refused", width)

        _user_sign_in(page, url)  # Hooli: lapsed, reads Spanish, two licenses
        assert "Signed in as" in page.locator("header").inner_text() or (
            "Sesión iniciada como" in page.locator("header").inner_text()
        )
        _look(page, "licenses-es", width)
        page.click("ul.licenses a >> nth=0")
        page.wait_for_url("**/portal/licenses/*/")
        assert page.locator("html").get_attribute("lang") == "es"
        assert "Renovar el mantenimiento" in page.locator("#maintenance").inner_text()
        _look(page, "lapsed-es", width)
        page.click("header button[value=en]")  # the language switcher
        page.wait_for_load_state("load")
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Renew maintenance" in page.locator("#maintenance").inner_text()
        page.click("header a:has-text('Change password')")
        page.wait_for_url("**/portal/password")
        _look(page, "password", width)
        page.fill("#current-password", "not the password")
        page.fill("#new-password", "a new long passphrase")
        page.fill("#confirm-password", "a new long passphrase")
        page.click("main button[type=submit]")
        assert "This is not your current password." in page.locator("#current-error").inner_text()
        _look(page, "password-refused", width)
    finally:
        context.close()
