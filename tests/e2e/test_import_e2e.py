"""A customer base imported from another system keeps working: 1,000 customers with contracts,
existing keys and installations imported by `vigor import customers`; an installation in the
field, presenting its old key, checks and updates against a real server process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.common.import_files import customers_csv, legacy_key
from tests.e2e.conftest import Deployment, make_installation

APPLIED = 10


def listed(deployment: Deployment, customer: str) -> list[list[str]]:
    result = deployment.server.vigor("installation", "list", "--customer", customer, "--csv")
    assert result.returncode == 0, result.stderr
    return [line.split(",") for line in result.stdout.splitlines()[1:]]


def test_an_installation_with_an_imported_key_updates_and_a_reimport_changes_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(
        customers_csv(
            1000,
            starts=(today - timedelta(days=700)).strftime("%d/%m/%Y"),
            ends=(today + timedelta(days=300)).isoformat(),
            installations=True,
        )
    )
    result = deployment.server.vigor("import", "customers", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert "imported 1000 rows" in result.stdout

    inst = make_installation(tmp_path / "field", deployment, "", license_key=legacy_key(7))
    # The installer of the old system kept the installation's id; the agent takes it over.
    (tmp_path / "field" / "state").mkdir()
    (tmp_path / "field" / "state" / "state.json").write_text(
        json.dumps({"installation_id": "legacy-inst-00000007"})
    )
    assert listed(deployment, "cust-00007")[0][4:6] == ["legacy-inst-00000007", "4.0.0"]

    status = inst.agent("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["entitlement"]["status"] == "active"
    updated = inst.agent("update")
    assert updated.returncode == APPLIED, updated.stderr + updated.stdout
    newest = inst.current_version()
    assert newest != "4.0.0" and inst.runs() == f"acme-erp {newest}"

    assert inst.agent("check").returncode == 0  # its next check reports the version it runs
    (row,) = listed(deployment, "cust-00007")  # the imported installation, not a second one
    assert row[4:6] == ["legacy-inst-00000007", newest]

    again = deployment.server.vigor("import", "customers", str(csv_file))
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert listed(deployment, "cust-00007")[0][5] == newest  # what the agent said stays
