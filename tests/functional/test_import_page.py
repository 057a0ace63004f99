"""The admin's Import page: upload, read the dry run, confirm; bad lines named on the page."""

from __future__ import annotations

import html
import io
import re

from flask.testing import FlaskClient
from sqlalchemy import func, select

from server.domain.models import AuditEvent, Customer, License
from server.services import Services
from tests.common.import_files import customers_csv
from tests.functional.test_admin_web import accounts, sign_in, token

__all__ = ["accounts"]  # the fixture, used by name


def counts(services: Services) -> tuple[int, int, int]:
    with services.db.sessions() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Customer, License, AuditEvent)
        )


def upload(client: FlaskClient, data: bytes, name: str = "customers.csv") -> tuple[int, str]:
    csrf = token(client, "/admin/import")
    response = client.post(
        "/admin/import",
        data={"csrf_token": csrf, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_data(as_text=True)


def test_dry_run_then_confirm_imports_and_a_second_confirm_changes_nothing(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["admin"])
    template = client.get("/admin/import/customers-template.csv")
    assert template.status_code == 200 and template.mimetype == "text/csv"
    data = b"\xef\xbb\xbf" + customers_csv(30).replace(",", ";").encode()
    before = counts(services)
    status, page = upload(client, data)
    assert status == 200
    assert "Dry run: customers.csv" in page and "30 customers" in page
    assert counts(services) == before
    form = re.search(r'name="data" value="([^"]+)"', page)
    assert form is not None
    confirm = {"csrf_token": token(client, "/admin/import"), "filename": "customers.csv"}
    response = client.post("/admin/import/confirm", data={**confirm, "data": form.group(1)})
    assert response.status_code == 200
    assert "Imported: customers.csv" in response.get_data(as_text=True)
    after = counts(services)
    assert after[:2] == (before[0] + 30, before[1] + 30)
    # The form posted twice (a double click, a reload): the second changes nothing.
    again = client.post("/admin/import/confirm", data={**confirm, "data": form.group(1)})
    assert "30 customers" in again.get_data(as_text=True) and "unchanged" in again.get_data(
        as_text=True
    )
    assert counts(services) == after


def test_bad_lines_are_named_and_nothing_can_be_confirmed(
    client: FlaskClient, services: Services, accounts: dict[str, str]
) -> None:
    sign_in(client, accounts["admin"])
    lines = customers_csv(5).splitlines()
    lines[2] = lines[2].replace("2026-12-31", "2026-02-30")
    before = counts(services)
    status, page = upload(client, ("\n".join(lines) + "\n").encode())
    assert status == 400
    assert "Line 3: contract_to: &#39;2026-02-30&#39; is not a day of the calendar" in page
    assert 'name="data"' not in page
    status, page = upload(client, b"\xff\xfe not text")
    assert status == 400
    assert "line 1 is not UTF-8 text" in html.unescape(page)
    assert counts(services) == before


def test_only_admins_import(client: FlaskClient, accounts: dict[str, str]) -> None:
    sign_in(client, accounts["publisher"])
    assert client.get("/admin/import").status_code == 403
    assert client.get("/admin/import/customers-template.csv").status_code == 403
