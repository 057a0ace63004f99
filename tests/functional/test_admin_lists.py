"""The admin lists as their readers meet them: search (a license key prefix included), filters,
sort, real pages, the CSV export of the same filtered list, and hostile query strings."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.dates import format_date
from flask.testing import FlaskClient
from sqlalchemy import select

from server.domain import audit, users
from server.domain import customers as customer_service
from server.domain.models import AuditEvent, Customer, Installation, License, utcnow
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product
from tests.functional.test_admin_web import PASSWORD, sign_in

TODAY = date.today()


def rows_of(page: str, table: str) -> list[str]:
    """The text of each body row of the table ``#table`` (tags stripped, spaces collapsed)."""
    body = page.split(f'id="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r"<tr.*?</tr>", body, flags=re.S)
    ]


def export(client: FlaskClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def many_customers(services: Services, count: int) -> None:
    """``count`` customers c001…, added in one transaction (faster than the service)."""
    with services.db.sessions() as s:
        s.add_all(
            Customer(
                slug=f"c{n:03}", name=f"Customer {n:03}", contact_emails=[f"it@c{n:03}.example"]
            )
            for n in range(1, count + 1)
        )
        s.commit()


@pytest.fixture
def admin(services: Services, client: FlaskClient) -> FlaskClient:
    with services.db.sessions() as s:
        users.add_user(s, "admin@example.com", PASSWORD, role="admin", actor="test")
    make_product(services)
    assert sign_in(client, "admin@example.com").status_code == 303
    return client


def test_customers_are_paged_in_a_stable_order_with_counts(
    admin: FlaskClient, services: Services
) -> None:
    many_customers(services, 120)
    seen: list[str] = []
    for number in (1, 2, 3):
        page = admin.get(f"/admin/customers?page={number}").get_data(as_text=True)
        rows = rows_of(page, "customers")
        seen += [row.split()[0:2][1] for row in rows]  # "Customer 001 c001 …" → "001"
        assert f"page {number} of 3" in page
    assert (
        len(rows_of(admin.get("/admin/customers?page=3").get_data(as_text=True), "customers")) == 20
    )
    assert seen == [f"{n:03}" for n in range(1, 121)], "each customer once, in name order"
    first = admin.get("/admin/customers").get_data(as_text=True)
    assert "1–50 of 120 customers" in first
    for path in ("customers", "licenses", "releases", "audit"):
        assert f'href="/admin/{path}"' in first, "the menu links to the pages, not the exports"
    descending = rows_of(
        admin.get("/admin/customers?sort=-slug").get_data(as_text=True), "customers"
    )
    assert descending[0].startswith("Customer 120 c120")


@pytest.mark.parametrize(
    ("page", "shown"),
    [("-1", 1), ("0", 1), ("abc", 1), ("²", 1), ("99999999999999999999", 1), ("7", 3), ("2.5", 1)],
)
def test_a_hostile_page_number_shows_a_page_that_exists(
    admin: FlaskClient, services: Services, page: str, shown: int
) -> None:
    many_customers(services, 120)
    for path in ("customers", "licenses", "contracts", "installations", "releases", "audit"):
        response = admin.get(f"/admin/{path}?page={page}&sort=%00x&q=%25_")
        assert response.status_code in (200, 400), path
    response = admin.get(f"/admin/customers?page={page}&sort=nonsense")
    assert response.status_code == 200
    assert f"page {shown} of 3" in response.get_data(as_text=True)


def test_find_a_customer_by_license_key_prefix_full_key_email_or_name(
    admin: FlaskClient, services: Services
) -> None:
    many_customers(services, 30)
    make_customer(services, "initech")
    key = make_license(services, "initech")
    with services.db.sessions() as s:
        prefix = s.scalar(select(License.key_prefix))
    assert prefix
    for search in (prefix, prefix[:7], key, key[:14], "it@c007.example", "INITECH"):
        rows = rows_of(
            admin.get("/admin/customers", query_string={"q": search}).get_data(as_text=True),
            "customers",
        )
        expected = "Customer 007" if "c007" in search else "Initech initech"
        assert len(rows) == 1 and rows[0].startswith(expected), (search, rows)
    # A wildcard typed is a character searched for, not "anything".
    assert "No customer matches" in admin.get("/admin/customers?q=%25").get_data(as_text=True)
    assert "No customer matches" in admin.get("/admin/customers?q=vgl_").get_data(as_text=True)


def test_the_customers_export_holds_every_row_of_the_filtered_list(
    admin: FlaskClient, services: Services
) -> None:
    many_customers(services, 120)
    rows = export(admin, "/admin/customers.csv")
    assert [r["slug"] for r in rows] == [f"c{n:03}" for n in range(1, 121)]
    assert rows[0]["contact_emails"] == "it@c001.example"
    only = export(admin, "/admin/customers.csv?q=Customer+01")
    assert [r["slug"] for r in only] == [f"c01{n}" for n in range(10)]
    page = admin.get("/admin/customers?q=Customer+01&page=1").get_data(as_text=True)
    assert 'href="/admin/customers.csv?q=Customer+01"' in page, "the export keeps the filter"


def test_a_cell_that_a_spreadsheet_would_run_is_neutralised(
    admin: FlaskClient, services: Services
) -> None:
    with services.db.sessions() as s:
        for n, name in enumerate(['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "plain"]):
            s.add(Customer(slug=f"f{n}", name=name, contact_emails=[]))
        s.commit()
    names = {r["slug"]: r["name"] for r in export(admin, "/admin/customers.csv")}
    assert names == {
        "f0": '\'=HYPERLINK("x")',
        "f1": "'+1",
        "f2": "'-2",
        "f3": "'@SUM(A1)",
        "f4": "plain",
    }


def shown(day: date) -> str:
    """A day as the admin pages write it to an English reader (``Sep 26, 2027``)."""
    return format_date(day, format="medium", locale="en")


def test_customers_show_their_maintenance(admin: FlaskClient, services: Services) -> None:
    make_customer(
        services,
        "initech",
        ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=35)),
    )
    make_customer(
        services, "globex", ("maintenance", TODAY - timedelta(days=10), TODAY + timedelta(days=300))
    )
    make_customer(services, "hooli")
    for slug in ("initech", "globex"):
        make_license(services, slug)
    rows = rows_of(admin.get("/admin/customers").get_data(as_text=True), "customers")
    assert f"acme-erp: active until {shown(TODAY + timedelta(days=300))}" in rows[0]  # Globex
    assert "no license yet" in rows[1]  # Hooli
    assert f"acme-erp: lapsed ended {shown(TODAY - timedelta(days=35))}" in rows[2]  # Initech
    exported = {r["slug"]: r["maintenance"] for r in export(admin, "/admin/customers.csv")}
    assert exported["initech"] == f"acme-erp: lapsed until {TODAY - timedelta(days=35)}"


def test_customers_are_filtered_by_maintenance_in_the_page_and_its_export(
    admin: FlaskClient, services: Services
) -> None:
    many_customers(services, 60)  # no license: maintenance "none"
    make_customer(
        services,
        "initech",
        ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=35)),
    )
    make_customer(
        services, "globex", ("maintenance", TODAY - timedelta(days=10), TODAY + timedelta(days=300))
    )
    make_product(services, "acme-crm")
    for slug in ("initech", "globex"):
        make_license(services, slug)
    make_license(services, "initech", product="acme-crm")  # no contract covers it: "none"

    lapsed = admin.get("/admin/customers?maintenance=lapsed").get_data(as_text=True)
    assert [r.split()[0] for r in rows_of(lapsed, "customers")] == ["Initech"]
    assert "1–1 of 1 customers" in lapsed
    assert "<option selected>lapsed</option>" in lapsed, "the filter shows what was chosen"
    assert 'href="/admin/customers.csv?maintenance=lapsed"' in lapsed, "the export keeps it"
    assert [r["slug"] for r in export(admin, "/admin/customers.csv?maintenance=lapsed")] == [
        "initech"
    ]
    assert [r["slug"] for r in export(admin, "/admin/customers.csv?maintenance=active")] == [
        "globex"
    ]
    # "none": the customers without a license, and Initech for acme-crm; paged in the list's order.
    none = admin.get("/admin/customers?maintenance=none&sort=-slug").get_data(as_text=True)
    assert "1–50 of 61 customers" in none and "page 1 of 2" in none
    assert rows_of(none, "customers")[0].startswith("Initech initech")
    second = admin.get("/admin/customers?maintenance=none&sort=-slug&page=2")
    assert [r.split()[2] for r in rows_of(second.get_data(as_text=True), "customers")] == [
        f"c{n:03}" for n in range(11, 0, -1)
    ]
    exported = export(admin, "/admin/customers.csv?maintenance=none&sort=-slug")
    assert [r["slug"] for r in exported] == ["initech"] + [f"c{n:03}" for n in range(60, 0, -1)]
    # Narrowed to one product, as the API's filter is.
    for product, status, expected in [
        ("acme-crm", "none", ["initech"]),
        ("acme-erp", "none", []),
        ("acme-erp", "lapsed", ["initech"]),
        ("acme-crm", "", ["initech"]),
    ]:
        query = f"maintenance={status}&product={product}"
        assert [r["slug"] for r in export(admin, f"/admin/customers.csv?{query}")] == expected
    crm = rows_of(
        admin.get("/admin/customers?product=acme-crm").get_data(as_text=True), "customers"
    )
    assert len(crm) == 1 and "acme-crm: none" in crm[0] and "acme-erp" not in crm[0]
    empty = admin.get("/admin/customers?maintenance=grace").get_data(as_text=True)
    assert "No customer matches these filters." in empty
    # A status that is not one is no filter (never a 500).
    assert "1–50 of 62 customers" in admin.get("/admin/customers?maintenance=expired").get_data(
        as_text=True
    )


def test_licenses_are_found_by_prefix_customer_and_status(
    admin: FlaskClient, services: Services
) -> None:
    make_customer(services, "initech")
    make_customer(services, "globex")
    keys = [make_license(services, "initech", label="plant 1"), make_license(services, "globex")]
    with services.db.sessions() as s:
        customer_service.set_license_status(
            s, customer_service.find_license(s, keys[1]), "suspended", actor="test"
        )
    by_prefix = rows_of(
        admin.get(f"/admin/licenses?key={keys[0][:8]}").get_data(as_text=True), "licenses"
    )
    assert len(by_prefix) == 1 and "Initech" in by_prefix[0] and "plant 1" in by_prefix[0]
    by_key = rows_of(
        admin.get("/admin/licenses", query_string={"key": keys[1]}).get_data(as_text=True),
        "licenses",
    )
    assert len(by_key) == 1 and "Globex" in by_key[0]
    suspended = rows_of(
        admin.get("/admin/licenses?status=suspended").get_data(as_text=True), "licenses"
    )
    assert len(suspended) == 1 and "Globex" in suspended[0]
    assert [r["customer"] for r in export(admin, "/admin/licenses.csv?customer=initech")] == [
        "initech"
    ]
    assert not any(key in admin.get("/admin/licenses.csv").get_data(as_text=True) for key in keys)


def test_contracts_ending_soon_and_lapsed(admin: FlaskClient, services: Services) -> None:
    make_customer(
        services, "ending", ("maintenance", TODAY - timedelta(days=300), TODAY + timedelta(days=10))
    )
    make_customer(
        services, "later", ("maintenance", TODAY - timedelta(days=300), TODAY + timedelta(days=90))
    )
    make_customer(
        services, "lapsed", ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=5))
    )
    make_customer(
        services,
        "early",  # renewed before the end: not "ending"
        ("maintenance", TODAY - timedelta(days=300), TODAY + timedelta(days=5)),
        ("maintenance", TODAY + timedelta(days=6), TODAY + timedelta(days=370)),
    )
    make_customer(
        services,
        "renewed",
        ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=5)),
        ("maintenance", TODAY - timedelta(days=4), TODAY + timedelta(days=360)),
    )

    def customers(query: str) -> list[str]:
        return [r["customer"] for r in export(admin, f"/admin/contracts.csv?{query}")]

    assert customers("state=ending&days=30") == ["ending"]
    assert customers("state=ending&days=100&sort=ends") == ["ending", "later"]
    assert customers("state=lapsed") == ["lapsed"]
    assert sorted(customers("state=ended")) == ["lapsed", "renewed"]
    assert len(customers("")) == 7
    assert sorted(customers("state=current")) == ["early", "ending", "later", "renewed"]
    page = admin.get("/admin/contracts?state=ending&days=30").get_data(as_text=True)
    assert [row.split()[0] for row in rows_of(page, "contracts")] == ["Ending"]


def test_contracts_and_licenses_by_customer_and_product(
    admin: FlaskClient, services: Services
) -> None:
    """The filters the admin API's lists share (listings.contracts_matching, licenses_matching):
    a customer by a part of its name in any case, a product by its slug."""
    make_product(services, "acme-crm")
    year = ("maintenance", TODAY - timedelta(days=10), TODAY + timedelta(days=355))
    make_customer(services, "initech", year)
    make_customer(services, "globex", year, product="acme-crm")
    make_customer(services, "initrode", year, product=None)  # every product: of none in particular
    make_license(services, "initech")
    make_license(services, "globex", "acme-crm")
    make_license(services, "initrode", "acme-crm")

    def contracts(query: str) -> list[str]:
        return sorted(r["customer"] for r in export(admin, f"/admin/contracts.csv?{query}"))

    def licenses(query: str) -> list[str]:
        return sorted(r["customer"] for r in export(admin, f"/admin/licenses.csv?{query}"))

    assert contracts("product=acme-crm") == ["globex"]
    assert contracts("q=INIT") == ["initech", "initrode"]
    assert contracts("q=init&product=acme-erp&state=current") == ["initech"]
    assert contracts("q=globex&product=acme-erp") == []
    assert licenses("product=acme-crm") == ["globex", "initrode"]
    assert licenses("customer=INIT") == ["initech", "initrode"]
    assert licenses("customer=init&product=acme-crm") == ["initrode"]
    assert licenses("product=nothing") == []


def installation(services: Services, key: str, uid: str, version: str, seen: datetime) -> None:
    with services.db.sessions() as s:
        lic = s.scalar(select(License).where(License.key_prefix == key[:10]))
        assert lic
        s.add(
            Installation(
                license_id=lic.id,
                uid=uid,
                version=version,
                platform="linux-x86_64",
                channel="stable",
                first_seen=seen,
                last_seen=seen,
            )
        )
        s.commit()


def test_installations_per_customer_and_lapsed_customers_still_running(
    admin: FlaskClient, services: Services
) -> None:
    make_customer(
        services,
        "initech",
        ("maintenance", TODAY - timedelta(days=400), TODAY - timedelta(days=40)),
    )
    make_customer(
        services, "globex", ("maintenance", TODAY - timedelta(days=10), TODAY + timedelta(days=300))
    )
    now = utcnow()
    initech, globex = make_license(services, "initech"), make_license(services, "globex")
    installation(services, initech, "initech-one-0000001", "4.2.0", now - timedelta(days=2))
    installation(services, initech, "initech-two-0000002", "4.1.0", now - timedelta(hours=1))
    installation(services, globex, "globex-one-00000001", "5.0.1", now)
    rows = rows_of(
        admin.get("/admin/installations?customer=initech").get_data(as_text=True), "installations"
    )
    assert [row.split()[3] for row in rows] == ["initech-two-0000002", "initech-one-0000001"], (
        "last seen first"
    )
    assert "4.1.0 linux-x86_64 stable" in rows[0]
    assert [r["version"] for r in export(admin, "/admin/installations.csv?version=5.0.1")] == [
        "5.0.1"
    ]
    lapsed = rows_of(admin.get("/admin/lapsed").get_data(as_text=True), "lapsed")
    assert len(lapsed) == 1 and "Initech" in lapsed[0] and "4.1.0, 4.2.0" in lapsed[0]
    assert [r["versions_running"] for r in export(admin, "/admin/lapsed.csv")] == ["4.1.0 4.2.0"]


def test_the_audit_log_has_real_pages_and_a_date_range(
    admin: FlaskClient, services: Services
) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with services.db.sessions() as s:
        for n in range(120):
            event = audit.record(s, "robot@example.com", "customer.add", f"t{n:03}")
            event.at = start + timedelta(days=n // 10)
        s.commit()
    first = rows_of(admin.get("/admin/audit?actor=robot").get_data(as_text=True), "audit")
    second = rows_of(admin.get("/admin/audit?actor=robot&page=2").get_data(as_text=True), "audit")
    assert len(first) == 50 and len(second) == 50
    assert not set(first) & set(second), "page 2 is not page 1 again"
    assert "t119" in first[0], "newest first"
    ranged = export(admin, "/admin/audit.csv?since=2026-03-02&until=2026-03-03")
    assert sorted(r["target"] for r in ranged) == [f"t{n:03}" for n in range(10, 30)]
    bad = admin.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400
    assert "&#39;yesterday&#39; is not a date (YYYY-MM-DD)" in bad.get_data(as_text=True)
    with services.db.sessions() as s:
        assert s.query(AuditEvent).count() >= 120
