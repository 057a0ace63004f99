"""The customer lists in a real headless Chromium against a live demo server: an admin finds a
customer by a license key prefix, pages through 500 customers and exports them to CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from server.config import Settings
from server.db import Database
from server.domain.models import Customer
from tests.e2e.conftest import Deployment
from tests.e2e.test_browser import admin_sign_in, browser, page, shot

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests

pytestmark = pytest.mark.browser
BULK = 500


def customer_slugs(deployment: Deployment) -> list[str]:
    """Every customer of the live server's database, by name (the list's order)."""
    database = Database(Settings.from_env(deployment.server.env).database_url)
    try:
        with database.sessions() as s:
            return list(s.scalars(select(Customer.slug).order_by(Customer.name, Customer.id)))
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def many_customers(deployment: Deployment) -> list[str]:
    """500 more customers in the live server's database; returns every customer's slug."""
    database = Database(Settings.from_env(deployment.server.env).database_url)
    try:
        with database.sessions() as s:
            s.add_all(
                Customer(
                    slug=f"bulk-{n:03}",
                    name=f"Bulk customer {n:03}",
                    contact_emails=[f"it@bulk-{n:03}.example"],
                )
                for n in range(1, BULK + 1)
            )
            s.commit()
    finally:
        database.dispose()
    return customer_slugs(deployment)


def test_an_admin_finds_a_customer_by_a_license_key_prefix(
    page: Page, deployment: Deployment, many_customers: list[str]
) -> None:
    admin_sign_in(page, deployment)
    page.click('nav a[href$="/admin/customers"]')
    page.wait_for_url("**/admin/customers")
    page.fill("#filter-q", deployment.licenses["initech"][:9])
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**/admin/customers?q=*")
    rows = page.locator("#customers tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").nth(1).inner_text() == "initech"
    shot(page, "customers-found-by-key")
    rows.first.locator("a").click()
    page.wait_for_url("**/admin/customers/initech")


def test_an_admin_pages_through_500_customers_and_exports_them(
    page: Page, deployment: Deployment, many_customers: list[str], tmp_path: Path
) -> None:
    total = len(many_customers)
    assert total > BULK
    admin_sign_in(page, deployment)
    page.goto(f"{deployment.server.url}/admin/customers")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += page.locator("#customers tbody tr td:nth-child(2)").all_inner_texts()
        assert f"of {total} customers" in page.locator("#page-summary").inner_text()
        following = page.locator("a[rel=next]")
        if following.count() == 0:
            break
        following.click()
        page.wait_for_load_state()
    assert pages == -(-total // 50)
    assert seen == many_customers, "every customer once, in the list's order"
    shot(page, "customers-last-page")

    with page.expect_download() as waiting:
        page.click("a.export")
    download = waiting.value
    target = tmp_path / "customers.csv"
    download.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["slug"] for row in rows] == many_customers
    bulk = next(row for row in rows if row["slug"] == "bulk-042")
    assert (bulk["name"], bulk["contact_emails"]) == ("Bulk customer 042", "it@bulk-042.example")
