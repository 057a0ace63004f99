"""Customers, contracts and licenses as an operator manages them from the CLI."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from sqlalchemy import select

from server.cli import cli
from server.domain.models import AuditEvent, Installation, License
from server.domain.secrets import secret_hash
from server.services import Services


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(cli, args=list(args))
    return result.exit_code, result.output


def setup_customer(app: Flask) -> None:
    assert run(app, "product", "add", "acme-erp")[0] == 0
    assert run(app, "customer", "add", "initech", "--name", "Initech")[0] == 0


def test_license_key_is_shown_once_and_stored_only_as_a_hash(
    app: Flask, services: Services
) -> None:
    setup_customer(app)
    code, output = run(
        app,
        "license",
        "issue",
        "--customer",
        "initech",
        "--product",
        "acme-erp",
        "--max-installations",
        "3",
    )
    assert code == 0
    key = output.splitlines()[0]
    assert key.startswith("vgl_") and len(key) > 30
    with services.db.sessions() as s:
        lic = s.scalar(select(License))
        assert lic is not None
        assert lic.key_hash == secret_hash(key)
        assert lic.max_installations == 3
        stored = [str(v) for v in (lic.key_hash, lic.key_prefix, lic.label)]
        assert key not in stored
    code, listing = run(app, "license", "list")
    assert code == 0
    assert key not in listing and key[:10] in listing


def test_suspend_reactivate_revoke_and_audit(app: Flask, services: Services) -> None:
    setup_customer(app)
    key = run(app, "license", "issue", "--customer", "initech", "--product", "acme-erp")[
        1
    ].splitlines()[0]
    assert "is suspended" in run(app, "license", "suspend", key)[1]
    assert "is active" in run(app, "license", "reactivate", key)[1]
    assert "is revoked" in run(app, "license", "revoke", key)[1]
    code, output = run(app, "license", "reactivate", key)
    assert code == 1
    assert "cannot be reactivated" in output
    with services.db.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-3:] == ["license.suspended", "license.active", "license.revoked"]


def test_contract_validation(app: Flask) -> None:
    setup_customer(app)
    ok = run(
        app,
        "contract",
        "add",
        "--customer",
        "initech",
        "--product",
        "acme-erp",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    )
    assert ok[0] == 0, ok[1]
    backwards = run(
        app,
        "contract",
        "add",
        "--customer",
        "initech",
        "--from",
        "2026-12-31",
        "--to",
        "2026-01-01",
    )
    assert backwards[0] == 1 and "must not be before" in backwards[1]
    bad_date = run(
        app,
        "contract",
        "add",
        "--customer",
        "initech",
        "--from",
        "2026-02-30",
        "--to",
        "2027-01-01",
    )
    assert bad_date[0] == 1 and "is not a date" in bad_date[1]
    unknown = run(
        app, "contract", "add", "--customer", "nobody", "--from", "2026-01-01", "--to", "2027-01-01"
    )
    assert unknown[0] == 1 and "no customer 'nobody'" in unknown[1]
    listing = run(app, "customer", "list")[1]
    assert "maintenance acme-erp 2026-01-01..2026-12-31" in listing


def test_duplicate_customer_and_bad_slug_are_refused(app: Flask) -> None:
    setup_customer(app)
    assert (
        run(app, "customer", "add", "initech")[1].strip()
        == "error: customer 'initech' already exists"
    )
    code, output = run(app, "customer", "add", "Not A Slug")
    assert code == 1 and "lowercase letters" in output


def test_portal_users_from_the_cli(app: Flask, services: Services) -> None:
    setup_customer(app)
    added = app.test_cli_runner().invoke(
        cli, args=["customer", "user", "add", "initech", "Ana@Initech.example"]
    )
    assert added.exit_code == 0, added.output
    link = added.stdout.strip()
    assert link.startswith("http://localhost/portal/set-password/"), "on the public address"
    assert "valid once until" in added.stderr and "not shown again" in added.stderr
    client = app.test_client()
    page = client.get(link.removeprefix("http://localhost")).get_data(as_text=True)
    assert "For ana@initech.example: at least 12 characters." in page

    code, listing = run(app, "customer", "user", "list", "initech")
    assert code == 0
    assert listing.split() == ["ana@initech.example", "invited", "never", "signed", "in"]
    assert run(app, "customer", "user", "disable", "ANA@initech.example") == (
        0,
        "portal user ana@initech.example disabled\n",
    )
    assert "disabled" in run(app, "customer", "user", "list", "initech")[1]
    assert client.get(link.removeprefix("http://localhost")).status_code == 400, "link void"
    with services.db.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-2:] == ["portal_user.add", "portal_user.disable"]


def test_portal_user_cli_errors_are_one_line(app: Flask) -> None:
    setup_customer(app)
    assert run(app, "customer", "user", "add", "initech", "ana@initech.example")[0] == 0
    for args, says in [
        (("add", "nobody", "x@y.example"), "error: no customer 'nobody'"),
        (
            ("add", "initech", "ANA@initech.example"),
            "error: portal user ana@initech.example already exists",
        ),
        (("add", "initech", "not-an-email"), "error: email: is not an email address"),
        (("list", "nobody"), "error: no customer 'nobody'"),
        (("disable", "eve@initech.example"), "error: no portal user 'eve@initech.example'"),
    ]:
        code, output = run(app, "customer", "user", *args)
        assert (code, output.strip()) == (1, says)
        assert output.count("\n") == 1


def test_license_list_counts_each_licenses_installations(app: Flask, services: Services) -> None:
    setup_customer(app)
    for _ in range(2):
        assert (
            run(app, "license", "issue", "--customer", "initech", "--product", "acme-erp")[0] == 0
        )
    with services.db.session() as s:
        first, _second = s.scalars(select(License).order_by(License.id)).all()
        now = datetime.now(UTC)
        for n in range(3):
            s.add(
                Installation(
                    license_id=first.id,
                    uid=f"installation-{n:08d}",
                    version="1.0.0",
                    platform="linux-x86_64",
                    channel="stable",
                    first_seen=now,
                    last_seen=now,
                )
            )
    code, listing = run(app, "license", "list")
    assert code == 0
    lines = listing.splitlines()
    assert "installations 3/-" in lines[0] and "installations 0/-" in lines[1]
