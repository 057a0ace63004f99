"""What a person (or a script) reads: renewal prompts, notices, JSON, help, one-line errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.common.agent_sim import AgentSim, Installation, now
from tests.functional.agent.conftest import APPLIED, AVAILABLE, REFUSED


def lapsed_customer(sim: AgentSim) -> None:
    """Covered until ten days ago; a security revision and a new version came out since."""
    sim.publish("1.1.0", published_at=now() - timedelta(days=20))
    sim.publish(
        "1.2.0", kind="security", severity="serious", published_at=now() - timedelta(days=5)
    )
    sim.publish("2.0.0", kind="version", published_at=now() - timedelta(days=1))
    sim.lapse(now() - timedelta(days=10))


def test_lapsed_license_gets_what_it_paid_for_and_a_renewal_prompt(
    sim: AgentSim, inst: Installation
) -> None:
    lapsed_customer(sim)
    status = inst.cli("status")
    assert status.code == 0, status
    lines = status.stdout.splitlines()
    assert lines[0] == "installed: 1.0.0"
    assert lines[1].startswith("update available: 1.1.0")
    assert any(line.startswith("maintenance: lapsed — Maintenance ended on") for line in lines)
    assert "  ! Renew maintenance to receive 2 releases, including 1 security revision(s)." in lines
    assert (
        "    missing: 0 update(s), 1 security revision(s), 1 new version(s); newest 2.0.0" in lines
    )
    assert "    renew at https://vendor.example/renew?customer=sim" in lines
    update = inst.cli("update")
    assert update.code == APPLIED
    assert inst.runs() == "app 1.1.0"
    assert "Renew maintenance" in update.stdout
    check = inst.cli("check", "--json")
    assert check.code == 0
    data = check.json()
    assert data["update"] is None
    assert data["entitlement"]["status"] == "lapsed"
    assert data["renewal"]["newest_version"] == "2.0.0"
    assert (data["renewal"]["security"], data["renewal"]["versions"]) == (1, 1)


def test_active_customer_sees_no_prompt(sim: AgentSim, inst: Installation) -> None:
    status = inst.cli("status")
    assert "maintenance: active" in status.stdout
    assert "renew" not in status.stdout.lower()


def test_expiring_customer_is_told_when(sim: AgentSim, inst: Installation) -> None:
    sim.entitlement.update(
        status="expiring",
        maintenance_ends_on="2026-12-31",
        message="Maintenance ends on 2026-12-31: renew to keep receiving updates.",
    )
    status = inst.cli("status")
    assert "maintenance: expiring — Maintenance ends on 2026-12-31" in status.stdout
    assert "maintenance ends on 2026-12-31" in status.stdout


def test_end_of_life_and_yanked_notices(sim: AgentSim, inst: Installation) -> None:
    sim.releases["1.0.0"].yanked = "corrupts invoices on leap days"
    sim.notices.append({"code": "end_of_life", "message": "1.x is no longer supported."})
    status = inst.cli("status")
    assert "  notice (end_of_life): 1.x is no longer supported." in status.stdout
    assert (
        "  notice (yanked): 1.0.0 was withdrawn by the vendor. "
        "(reason: corrupts invoices on leap days; recommended: 1.1.0)" in status.stdout
    )
    data = inst.cli("status", "--json").json()
    assert {n["code"] for n in data["notices"]} == {"end_of_life", "yanked"}


def test_json_output_of_every_command_parses(sim: AgentSim, inst: Installation) -> None:
    status = inst.cli("--json", "status").json()
    assert status["installation_id"].startswith("inst-")
    assert status["update"]["version"] == "1.1.0"
    assert status["update"]["sha256"] == sim.releases["1.1.0"].sha256
    assert inst.cli("check", "--json").json()["update"]["due"] is True
    assert inst.cli("download", "--json").json()["downloaded"] == "1.1.0"
    applied = inst.cli("apply", "--json")
    assert applied.code == APPLIED
    assert applied.json() == {
        "applied": True,
        "version": "1.1.0",
        "message": "updated 1.0.0 → 1.1.0",
        "patch": None,
    }
    assert inst.cli("update", "--json").json()["message"] == "up to date"
    assert inst.cli("rollback", "--json").json()["version"] == "1.0.0"
    assert inst.cli("verify", "--json").json()["ok"] is False  # 1.0.0 came from the installer


def test_a_failure_in_json_mode_is_one_line_on_stderr_and_json_on_stdout(
    sim: AgentSim, inst: Installation
) -> None:
    sim.faults.add("flip-byte")
    result = inst.cli("update", "--json")
    assert result.code == REFUSED
    assert result.stderr.count("\n") == 1
    error = result.json()["error"]
    assert error["type"] == "ArtifactError" and error["exit_code"] == REFUSED
    assert "SHA-256" in error["message"]


def test_check_exit_code_says_whether_an_update_is_available(
    sim: AgentSim, inst: Installation
) -> None:
    assert inst.cli("check").code == AVAILABLE
    inst.cli("update")
    assert inst.cli("check").code == 0


def test_help_documents_the_exit_codes(inst: Installation) -> None:
    result = inst.cli("--help")
    assert result.code == 0
    for code in ("0", "1", "2", "10", "11", "20", "21", "30", "40", "50"):
        assert f"\n  {code} " in result.stdout
    for command in ("status", "check", "download", "apply", "update", "rollback", "verify"):
        assert command in result.stdout


def test_errors_are_one_line_unless_verbose(tmp_path: Path, inst: Installation) -> None:
    usage = inst.cli("frobnicate")
    assert usage.code == 2 and usage.stderr.count("\n") == 1
    inst.config.write_text(inst.config.read_text().replace('product = "acme-erp"', "product = 7"))
    bad = inst.cli("status")
    assert bad.code == 2
    assert bad.stderr == "vigor-agent: config: 'product' must be a string, not int (7)\n"
    verbose = inst.cli("--verbose", "status")
    assert "Traceback" in verbose.stderr and verbose.stderr.endswith("not int (7)\n")
    inst.config.rename(tmp_path / "elsewhere.toml")
    gone = inst.cli("status")
    assert gone.code == 2 and "does not exist" in gone.stderr


def test_python_dash_m_runs_the_same_cli(inst: Installation) -> None:
    result = inst.subprocess("check")
    assert result.code == AVAILABLE, result
    assert "update available: 1.1.0" in result.stdout
