"""Happy paths: updates, rollback, resumed downloads, renewed links, rotated roots, schedules."""

from __future__ import annotations

import fcntl
import json
from datetime import timedelta
from pathlib import Path

from tests.common.agent_sim import (
    AgentSim,
    Installation,
    app_files,
    make_installation,
    now,
    zip_archive,
)
from tests.functional.agent.conftest import (
    APPLIED,
    AVAILABLE,
    BUSY,
    INSTALL_FAILED,
    NETWORK,
    assert_unchanged,
)


def test_update_to_newest_then_rollback_and_forward_again(
    sim: AgentSim, inst: Installation
) -> None:
    sim.publish("1.2.0")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert "updated 1.0.0 → 1.2.0" in result.stdout
    assert inst.runs() == "app 1.2.0"
    assert [(r["outcome"], r["version"], r["from_version"]) for r in sim.reports] == [
        ("success", "1.2.0", "1.0.0")
    ]
    again = inst.cli("update")
    assert again.code == 0
    assert again.stdout.startswith("up to date")
    back = inst.cli("rollback")
    assert back.code == 0, back
    assert "rolled back 1.2.0 → 1.0.0" in back.stdout
    assert inst.runs() == "app 1.0.0"
    assert sim.reports[-1]["code"] == "manual_rollback"
    forward = inst.cli("update")
    assert forward.code == APPLIED
    assert inst.runs() == "app 1.2.0"
    assert inst.leftovers() == []


def test_previous_version_is_kept_and_older_ones_pruned(sim: AgentSim, inst: Installation) -> None:
    assert inst.cli("update").code == APPLIED
    sim.publish("1.2.0")
    assert inst.cli("update").code == APPLIED
    assert sorted(p.name for p in (inst.app / "versions").iterdir()) == ["1.1.0", "1.2.0"]
    kept = {sim.releases[v].sha256 for v in ("1.1.0", "1.2.0")}
    assert {p.name for p in (inst.state / "downloads").iterdir()} == kept
    assert sorted(p.name for p in (inst.state / "manifests").iterdir()) == [
        "1.1.0.json",
        "1.2.0.json",
    ]
    assert inst.cli("rollback").code == 0
    assert inst.runs() == "app 1.1.0"


def test_verify_checks_the_installed_version_offline(sim: AgentSim, inst: Installation) -> None:
    installer_made = inst.cli("verify")
    assert installer_made.code == 20
    assert "no signed manifest" in installer_made.stdout
    inst.cli("update")
    sim.stop()  # offline from here
    verified = inst.cli("--json", "verify")
    assert verified.code == 0, verified
    assert verified.json() == {"ok": True, "installed_version": "1.1.0", "problems": []}
    artifact = inst.state / "downloads" / sim.releases["1.1.0"].sha256
    artifact.write_bytes(b"tampered")
    tampered = inst.cli("verify")
    assert tampered.code == 20
    assert "kept artifact of 1.1.0" in tampered.stdout


def test_first_install_when_nothing_is_installed(tmp_path: Path, sim: AgentSim) -> None:
    inst = make_installation(tmp_path, sim, version=None)
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert "updated nothing → 1.1.0" in result.stdout
    assert inst.runs() == "app 1.1.0"
    nothing_before = inst.cli("rollback")
    assert nothing_before.code == INSTALL_FAILED
    assert "no previous version" in nothing_before.stderr


def test_bootstrap_version_from_the_config(tmp_path: Path, sim: AgentSim) -> None:
    inst = make_installation(tmp_path, sim, version=None, extra='installed_version = "1.1.0"\n')
    sim.publish("1.2.0")
    data = inst.cli("check", "--json").json()
    assert data["installed_version"] == "1.1.0"
    assert data["update"]["version"] == "1.2.0"
    assert sim.requests("/api/v1/check")[-1].body["version"] == "1.1.0"


def test_zip_artifact_for_any_platform(sim: AgentSim, inst: Installation) -> None:
    sim.publish("1.1.0", archive=zip_archive(app_files("1.1.0")), platform="any")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert inst.runs() == "app 1.1.0"


def test_archive_with_a_top_level_directory_is_unpacked_without_it(
    sim: AgentSim, inst: Installation
) -> None:
    files = {f"app-1.1.0/{name}": body for name, body in app_files("1.1.0").items()}
    sim.publish("1.1.0", files, filename="app-1.1.0.tar.gz")
    assert inst.cli("update").code == APPLIED
    assert inst.runs() == "app 1.1.0"


# --------------------------------------------------------------------------- downloads


def test_a_broken_connection_is_resumed_with_range_and_if_range(
    sim: AgentSim, inst: Installation
) -> None:
    release = sim.publish("1.1.0", app_files("1.1.0", padding=512 * 1024))
    sim.faults.add("drop-once")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    first, second = (s.headers for s in sim.requests("/api/v1/download/"))
    assert "Range" not in first
    assert second["Range"] == f"bytes={sim.drop_after}-"
    assert second["If-Range"] == f'"{release.sha256}"'
    assert inst.runs() == "app 1.1.0"


def test_a_partial_download_from_an_earlier_run_is_resumed_then_applied_later(
    sim: AgentSim, inst: Installation
) -> None:
    release = sim.releases["1.1.0"]
    check = inst.cli("check", "--json")
    assert check.code == AVAILABLE
    assert check.json()["update"]["sha256"] == release.sha256
    half = release.size // 2
    (inst.state / "downloads" / f"{release.sha256}.part").write_bytes(release.archive[:half])
    fetched = inst.cli("download", "--json")
    assert fetched.code == 0, fetched
    assert fetched.json()["downloaded"] == "1.1.0"
    assert sim.requests("/api/v1/download/")[-1].headers["Range"] == f"bytes={half}-"
    sim.stop()  # `apply` needs no network: the verified offer was kept
    applied = inst.cli("apply")
    assert applied.code == APPLIED, applied
    assert inst.runs() == "app 1.1.0"


def test_a_server_that_ignores_range_means_starting_again(
    sim: AgentSim, inst: Installation
) -> None:
    release = sim.releases["1.1.0"]
    (inst.state / "downloads").mkdir(parents=True)
    (inst.state / "downloads" / f"{release.sha256}.part").write_bytes(b"stale bytes")
    sim.faults.add("ignore-range")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert sim.requests("/api/v1/download/")[0].headers["Range"] == "bytes=11-"
    assert inst.runs() == "app 1.1.0"


def test_an_expired_download_link_is_replaced_by_checking_again(
    sim: AgentSim, inst: Installation
) -> None:
    sim.faults.add("expire-first-link")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert len(sim.requests("/api/v1/check")) == 2
    assert len(sim.requests("/api/v1/download/")) == 2


def test_redirect_to_another_host_never_carries_the_license(
    sim: AgentSim, inst: Installation
) -> None:
    sim.faults.add("redirect")
    result = inst.cli("update")
    assert result.code == APPLIED, result
    (asked,) = sim.requests("/api/v1/download/", host="127.0.0.1")
    assert asked.headers["Authorization"] == f"License {sim.license_key}"
    (fetched,) = sim.requests("/blob/", host="localhost")
    assert "Authorization" not in fetched.headers
    assert inst.runs() == "app 1.1.0"


# --------------------------------------------------------------------------- trust


def test_rotated_root_is_walked_persisted_and_trusted(sim: AgentSim, inst: Installation) -> None:
    sim.add_root(expires=now() + timedelta(days=400), new_root_key=True, new_online_keys=True)
    sim.publish("1.1.0")  # signed by the new release key, which only root 2 names
    result = inst.cli("update")
    assert result.code == APPLIED, result
    assert sorted(p.name for p in (inst.state / "root").iterdir()) == ["1.json", "2.json"]
    stored = json.loads((inst.state / "root" / "2.json").read_text())
    assert stored == sim.roots[1]


def test_a_root_without_a_check_role_is_refused_and_nothing_changes(
    sim: AgentSim, inst: Installation
) -> None:
    sim.add_root(expires=now() + timedelta(days=400), check_role=False)
    result = inst.cli("update")
    assert result.code == 20, result
    assert "lacks the 'check' role" in result.stderr
    assert_unchanged(inst)
    assert sorted(p.name for p in (inst.state / "root").iterdir()) == ["1.json"]


def test_a_check_answer_signed_only_by_the_release_key_is_refused(
    sim: AgentSim, inst: Installation
) -> None:
    sim.check_role = False  # the server signs answers with its release key; root 1 names another
    result = inst.cli("update")
    assert result.code == 20, result
    assert "not signed by the keys root names for 'check'" in result.stderr
    assert_unchanged(inst)
    sim.check_role = True
    assert inst.cli("update").code == APPLIED


def test_a_stored_root_edited_on_disk_is_refused(sim: AgentSim, inst: Installation) -> None:
    sim.add_root(expires=now() + timedelta(days=400), new_root_key=True)
    assert inst.cli("check").code == AVAILABLE
    stored = inst.state / "root" / "2.json"
    document = json.loads(stored.read_text())
    document["signed"]["expires"] = "2099-01-01T00:00:00Z"
    stored.write_text(json.dumps(document))
    refused = inst.cli("check")
    assert refused.code == 20
    assert "changed on disk" in refused.stderr


# --------------------------------------------------------------------------- schedule, reports


def test_retry_after_is_persisted_and_obeyed(sim: AgentSim, inst: Installation) -> None:
    sim.faults.add("429")
    busy = inst.cli("update")
    assert busy.code == NETWORK
    assert "asked to wait" in busy.stderr
    assert json.loads((inst.state / "state.json").read_text())["not_before"]
    sim.faults.clear()
    early = inst.cli("update")
    assert early.code == NETWORK
    assert "not to be contacted before" in early.stderr
    assert len(sim.requests("/api/v1/check")) == 1, "the server was not contacted again"


def test_when_due_waits_for_apply_by_but_not_for_critical(
    sim: AgentSim, inst: Installation
) -> None:
    sim.publish("1.1.0", kind="security", severity="minor", published_at=now())
    waiting = inst.cli("update", "--when-due", "--json")
    assert waiting.code == AVAILABLE, waiting
    data = waiting.json()
    assert data["applied"] is False
    assert data["update"]["severity"] == "minor" and data["update"]["due"] is False
    assert inst.current_version() == "1.0.0"
    sim.publish("1.2.0", kind="security", severity="critical", published_at=now())
    critical = inst.cli("update", "--when-due")
    assert critical.code == APPLIED, critical
    assert inst.runs() == "app 1.2.0"


def test_reports_are_queued_when_undeliverable_and_sent_next_time(
    sim: AgentSim, inst: Installation
) -> None:
    sim.faults.add("report-500")
    assert inst.cli("update").code == APPLIED, "a failed report never fails the update"
    queued = json.loads((inst.state / "reports.json").read_text())
    assert [r["outcome"] for r in queued] == ["success"]
    sim.faults.clear()
    assert inst.cli("status").code == 0
    assert [r["outcome"] for r in sim.reports] == ["success"]
    assert json.loads((inst.state / "reports.json").read_text()) == []


def test_another_agent_at_work_is_not_disturbed(sim: AgentSim, inst: Installation) -> None:
    inst.state.mkdir(parents=True, exist_ok=True)
    with (inst.state / "agent.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = inst.cli("update")
        assert result.code == BUSY
        assert "another vigor-agent" in result.stderr
        assert inst.cli("check").code == AVAILABLE, "read commands still answer"
    assert inst.cli("update").code == APPLIED, "the lock went with its holder"


def test_run_loop_applies_when_due(sim: AgentSim, inst: Installation) -> None:
    result = inst.cli("run", "--rounds", "1")
    assert result.code == 0
    assert "updated 1.0.0 → 1.1.0" in result.stdout


def test_a_corrupt_partial_file_from_an_earlier_run_is_fetched_again(
    sim: AgentSim, inst: Installation
) -> None:
    release = sim.releases["1.1.0"]
    (inst.state / "downloads").mkdir(parents=True)
    (inst.state / "downloads" / f"{release.sha256}.part").write_bytes(b"\0" * release.size)
    result = inst.cli("update")
    assert result.code == APPLIED, result
    (fetched,) = sim.requests("/api/v1/download/")
    assert "Range" not in fetched.headers, "the bad bytes were dropped, not resumed"
