"""`vigor import customers`: customers, contracts, existing keys and installations from CSV files
as other systems and spreadsheets write them, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from server.cli import cli
from server.domain.models import AuditEvent, Contract, Customer, Installation, License
from server.domain.secrets import secret_hash
from server.services import Services
from tests.common.import_files import customers_csv, legacy_key


def run(app: Flask, *args: str) -> tuple[int, str, str]:
    result = app.test_cli_runner().invoke(cli, args=list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def counts(services: Services) -> dict[str, int]:
    with services.db.sessions() as s:
        return {
            model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (Customer, Contract, License, Installation, AuditEvent)
        }


@pytest.fixture
def product(app: Flask) -> str:
    assert run(app, "product", "add", "acme-erp")[0] == 0
    return "acme-erp"


def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_a_thousand_customers_import_once_and_a_rerun_changes_nothing(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    csv_file = write(tmp_path, customers_csv(1000, installations=True))
    before = counts(services)
    code, out, err = run(app, "import", "customers", str(csv_file), "--dry-run")
    assert code == 0, err
    assert "dry run" in out and "1000 customers" in out
    assert counts(services) == before

    code, out, err = run(app, "import", "customers", str(csv_file))
    assert code == 0, err
    assert "imported 1000 rows" in out
    after = counts(services)
    assert after["Customer"] == after["Contract"] == after["License"] == 1000
    assert after["Installation"] == 1000
    # One audit event per customer, contract and license, and one for the import.
    assert after["AuditEvent"] == before["AuditEvent"] + 3001
    with services.db.sessions() as s:
        lic = s.scalar(select(License).where(License.key_hash == secret_hash(legacy_key(7))))
        assert lic is not None and lic.customer.slug == "cust-00007"
        assert lic.max_installations == 3 and lic.key_prefix == legacy_key(7)[:9]
        stored = s.scalars(select(License.key_prefix)).all()
        assert legacy_key(7) not in stored  # only the hash and a prefix are kept

    code, out, err = run(app, "import", "customers", str(csv_file))
    assert code == 0, err
    assert "nothing changed" in out and "1000 customers" in out
    assert counts(services) == after  # rows and audit events alike


def test_a_file_with_three_bad_rows_imports_nothing_and_names_the_three_lines(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    lines = customers_csv(20).splitlines()
    lines[4] = lines[4].replace("2026-12-31", "31/13/2026")  # no 13th month: line 5
    lines[9] = lines[9].replace("acme-erp", "no-such-product")  # line 10
    lines[15] = lines[15].replace(legacy_key(14), "short")  # line 16
    csv_file = write(tmp_path, "\n".join(lines) + "\n")
    before = counts(services)
    code, _out, err = run(app, "import", "customers", str(csv_file))
    assert code == 1
    assert "line 5: contract_to: '31/13/2026' is not a day of the calendar" in err
    assert "line 10: product: no product 'no-such-product'" in err
    assert "line 16: license_key: must be 12 to 200 printable ASCII" in err
    assert err.count("error: line ") == 3
    assert "3 line(s) with problems; nothing was imported" in err
    assert counts(services) == before


SPREADSHEET = (
    "Customer;Name;Language;Product;Contract From;Contract To;License Key;Max Installations\n"
    'panaderia-sol;"Panadería Sol; S.L.";es;acme-erp;1 ene 2026;31 dic 2026;SOL-2019-0042-ÁB;\n'
    "muñoz-hnos;Muñoz Hermanos;es;acme-erp;01/02/2026;31 de enero de 2027;MUNOZ-KEY-000001;2\n"
    "panaderia-sol;;;acme-erp;1 ene 2026;31 dic 2026;;\n"
)


def test_a_spreadsheet_export_with_a_bom_semicolons_spanish_dates_and_accents(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    rows = SPREADSHEET.replace("SOL-2019-0042-ÁB", "SOL-2019-0042-AB").replace(
        "muñoz-hnos", "munoz-hnos"
    )
    csv_file = write(tmp_path, rows, bom=True)
    code, _out, err = run(app, "import", "customers", str(csv_file))
    assert code == 0, err
    with services.db.sessions() as s:
        sol = s.scalar(select(Customer).where(Customer.slug == "panaderia-sol"))
        assert sol is not None and sol.name == "Panadería Sol; S.L." and sol.language == "es"
        (contract,) = sol.contracts
        assert (contract.starts_on.isoformat(), contract.ends_on.isoformat()) == (
            "2026-01-01",
            "2026-12-31",
        )
        munoz = s.scalar(select(Customer).where(Customer.slug == "munoz-hnos"))
        assert munoz is not None
        assert [(c.starts_on.isoformat(), c.ends_on.isoformat()) for c in munoz.contracts] == [
            ("2026-02-01", "2027-01-31")
        ]
    # Line 4 names line 2's customer and contract again (leaving out the name): the same ones.
    assert counts(services)["Contract"] == 2


def test_non_ascii_keys_and_slugs_are_refused_with_their_lines(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    before = counts(services)
    code, _, err = run(app, "import", "customers", str(write(tmp_path, SPREADSHEET, bom=True)))
    assert code == 1
    assert "line 2: license_key" in err
    assert "line 3: customer: 'muñoz-hnos' must be a slug" in err
    assert counts(services) == before


def test_duplicates_identical_are_one_and_conflicting_are_errors(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    key = legacy_key(1)
    header = "customer,name,product,license_key,max_installations\n"
    same = f"initech,Initech,acme-erp,{key},2\n"
    code, _out, err = run(
        app, "import", "customers", str(write(tmp_path, header + same + same + same))
    )
    assert code == 0, err
    assert "line 3: repeats line 2" in err and "line 4: repeats line 2" in err
    assert counts(services)["License"] == 1

    conflicting = header + f"globex,Globex,acme-erp,{legacy_key(2)},2\n"
    conflicting += f"globex,Globex,acme-erp,{legacy_key(2)},5\n"  # same key, another cap
    conflicting += f"hooli,Hooli,acme-erp,{key},2\n"  # initech's key, given to someone else
    before = counts(services)
    code, _, err = run(app, "import", "customers", str(write(tmp_path, conflicting, name="b.csv")))
    assert code == 1
    assert "line 3: license differs from line 2 in max_installations" in err
    assert "line 4: license_key: this key is already a license of initech for acme-erp" in err
    assert counts(services) == before


def test_an_installation_cap_and_a_not_utf8_file_are_refused(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    key = legacy_key(3)
    rows = "customer,product,license_key,max_installations,installation_id,version,platform\n"
    for n in range(3):
        rows += f"initech,acme-erp,{key},2,inst-{n:016},4.0.0,linux-x86_64\n"
    code, _, err = run(app, "import", "customers", str(write(tmp_path, rows)))
    assert code == 1
    assert "line 4: max_installations: the license allows 2 installation(s)" in err

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("customer,name\nsol,Panadería\n".encode("latin-1"))
    code, _, err = run(app, "import", "customers", str(latin1))
    assert code == 1
    assert err.strip() == (
        "error: file: line 2 is not UTF-8 text (byte 0xed); save the file as CSV UTF-8"
    )
    assert counts(services)["Customer"] == 0


def test_the_template_is_a_file_the_import_accepts(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    code, template, _ = run(app, "import", "template")
    assert code == 0
    code, out, err = run(app, "import", "customers", str(write(tmp_path, template)))
    assert code == 0, err
    assert "2 customers" in out and "1 installations" in out
    code, listing, _ = run(app, "installation", "list", "--customer", "initech")
    assert "legacy-000000000001" in listing and "4.2.0" in listing


def test_rows_that_leave_a_cell_empty_complete_each_other(
    app: Flask, services: Services, product: str, tmp_path: Path
) -> None:
    key = legacy_key(5)
    rows = (
        "customer,product,license_key,license_status,installation_id,version,platform,last_seen\n"
    )
    rows += f"initech,acme-erp,{key},,inst-initech-000001,4.0.0,linux-x86_64,\n"
    rows += f"initech,acme-erp,{key},suspended,inst-initech-000001,4.0.0,linux-x86_64,1/3/2026\n"
    code, _, err = run(app, "import", "customers", str(write(tmp_path, rows)))
    assert code == 0, err
    with services.db.sessions() as s:
        lic = s.scalar(select(License))
        assert lic is not None and lic.status == "suspended" and lic.status_changed_at
        inst = s.scalar(select(Installation))
        assert inst is not None and inst.last_seen.date().isoformat() == "2026-03-01"
