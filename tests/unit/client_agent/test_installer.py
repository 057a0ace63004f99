"""The Installer on its own: real directories, real archives, a report that only records.

Manifests are signed by keys made here (tests/common/agent_sim.py helpers) and verified by the
agent's verifier, as the agent would hand them over; no network, no Agent.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client_agent import install
from client_agent.config import AgentConfig
from client_agent.errors import ArtifactError, InstallError
from client_agent.installer import Installer, Outcome
from client_agent.roots import TrustedRoot, trust_initial_root
from client_agent.state import StateStore, prepare_state_dir
from client_agent.verify import Manifest, verify_manifest
from tests.common.agent_sim import Key, app_files, iso, root_signed, sign, tar_gz

ROOT, RELEASE = Key(), Key()
FAR = datetime(2099, 1, 1, tzinfo=UTC)
PUBLISHED = datetime(2026, 11, 1, tzinfo=UTC)


class RecordedReports(list[tuple[str, str | None, str, str | None]]):
    """The ``report`` seam: keeps what the server would receive, in order (but the message)."""

    def __call__(self, *report: Any) -> None:
        version, from_version, outcome, code, _message = report
        self.append((version, str(from_version) if from_version else None, outcome, code))


def trusted() -> TrustedRoot:
    return trust_initial_root(sign(root_signed(1, FAR, [ROOT], [RELEASE], [RELEASE]), [ROOT]))


class Releases:
    """Artifacts in ``downloads/`` with their verified manifests, as `download` leaves them."""

    def __init__(self, layout: install.Layout) -> None:
        self.layout = layout

    def add(self, version: str, exit_code: int = 0) -> tuple[Manifest, Path]:
        archive = tar_gz(app_files(version, exit_code))
        sha = hashlib.sha256(archive).hexdigest()
        path = self.layout.downloaded(sha)
        path.write_bytes(archive)
        signed = {
            "type": "release",
            "product": "acme-erp",
            "version": version,
            "kind": "update",
            "channel": "stable",
            "severity": None,
            "published_at": iso(PUBLISHED),
            "min_from": None,
            "artifacts": {"any": {"filename": "a.tar.gz", "size": len(archive), "sha256": sha}},
        }
        manifest = verify_manifest(
            sign(signed, [RELEASE]),
            trusted(),
            product="acme-erp",
            platform="linux-x86_64",
            installed=None,
        )
        return manifest, path

    def stage(self, version: str) -> None:
        """``versions/<version>`` unpacked, as an apply leaves it just before the switch."""
        _, path = self.add(version)
        install.stage(self.layout, path, "a.tar.gz", version, margin=0)


@pytest.fixture
def layout(tmp_path: Path) -> install.Layout:
    prepare_state_dir(tmp_path / "state")
    return install.Layout(tmp_path / "app", tmp_path / "state")


@pytest.fixture
def reports() -> RecordedReports:
    return RecordedReports()


@pytest.fixture
def installer(tmp_path: Path, layout: install.Layout, reports: RecordedReports) -> Installer:
    config = AgentConfig(
        server_url="https://updates.invalid",
        license_key="vgl_x",
        product="acme-erp",
        platform="linux-x86_64",
        install_dir=layout.install_dir,
        state_dir=layout.state_dir,
        trusted_root=tmp_path / "root.json",
        health_check=("bin/app",),
        free_space_margin=0,
    )
    return Installer(config, layout, StateStore(layout.state_dir), reports)


@pytest.fixture
def releases(layout: install.Layout) -> Releases:
    return Releases(layout)


def versions(layout: install.Layout) -> list[str]:
    return sorted(p.name for p in layout.versions.iterdir())


def test_an_apply_switches_keeps_the_previous_version_and_reports_success(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    outcome = installer.apply(*releases.add("1.1.0"))
    assert outcome == Outcome(True, "1.1.0", "updated 1.0.0 → 1.1.0")
    assert layout.current_version() == "1.1.0"
    assert installer.state.get("previous_version") == "1.0.0"
    assert layout.kept_manifest("1.1.0").exists() and layout.kept_manifest("1.0.0").exists()
    assert not layout.journal.exists()
    assert reports == [("1.0.0", None, "success", None), ("1.1.0", "1.0.0", "success", None)]


def test_only_the_current_and_previous_versions_and_their_downloads_are_kept(
    installer: Installer, releases: Releases, layout: install.Layout
) -> None:
    first = releases.add("1.0.0")
    installer.apply(*first)
    installer.apply(*releases.add("1.1.0"))
    installer.apply(*releases.add("1.2.0"))
    assert versions(layout) == ["1.1.0", "1.2.0"]
    assert not first[1].exists(), "the download of a pruned version is dropped"
    assert sorted(p.stem for p in layout.manifests.iterdir()) == ["1.1.0", "1.2.0"]


def test_a_failed_health_check_switches_back_and_leaves_nothing_of_the_new_version(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    with pytest.raises(InstallError, match=r"version 1\.0\.0 restored") as refused:
        installer.apply(*releases.add("1.1.0", exit_code=3))
    assert refused.value.code == "health_check_failed"
    assert layout.current_version() == "1.0.0"
    assert versions(layout) == ["1.0.0"]
    assert not layout.kept_manifest("1.1.0").exists()
    assert not layout.journal.exists()
    assert reports[-1] == ("1.1.0", "1.0.0", "rolled_back", "health_check_failed")


def test_an_artifact_changed_since_it_was_verified_is_refused_before_anything_changes(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    manifest, path = releases.add("1.0.0")
    path.write_bytes(path.read_bytes() + b"!")
    with pytest.raises(ArtifactError):
        installer.apply(manifest, path)
    assert layout.current_version() is None
    assert not layout.versions.exists()
    assert reports == []


def test_a_rollback_returns_to_the_previous_version_and_reports_it(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    installer.apply(*releases.add("1.1.0"))
    assert installer.rollback() == Outcome(True, "1.0.0", "rolled back 1.1.0 → 1.0.0")
    assert layout.current_version() == "1.0.0"
    assert installer.state.get("previous_version") == "1.1.0", "a second rollback goes forward"
    assert reports[-1] == ("1.1.0", "1.0.0", "rolled_back", "manual_rollback")


def test_without_a_previous_version_a_rollback_changes_nothing(
    installer: Installer, releases: Releases, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    with pytest.raises(InstallError, match="no previous version"):
        installer.rollback()
    assert layout.current_version() == "1.0.0"


def test_recover_undoes_a_switch_that_was_never_confirmed_and_reports_it(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    releases.stage("1.1.0")
    install.begin(layout, "1.0.0", "1.1.0")
    install.switch(layout, "1.1.0")  # as if killed before the health check passed
    assert installer.recover().undone == "1.1.0"
    assert layout.current_version() == "1.0.0"
    assert not layout.journal.exists()
    assert reports[-1] == ("1.1.0", "1.0.0", "rolled_back", "interrupted")


def test_recover_finishes_the_books_of_a_confirmed_apply(
    installer: Installer, releases: Releases, reports: RecordedReports, layout: install.Layout
) -> None:
    installer.apply(*releases.add("1.0.0"))
    releases.stage("1.1.0")
    install.switch(layout, "1.1.0")
    install.confirm(layout, "1.0.0", "1.1.0")  # as if killed right after the health check
    assert installer.recover().completed == "1.1.0"
    assert installer.state.get("previous_version") == "1.0.0"
    assert not layout.journal.exists()
    assert reports[-1] == ("1.1.0", "1.0.0", "success", None)


def test_verify_installed_names_a_kept_artifact_changed_on_disk(
    installer: Installer, releases: Releases
) -> None:
    manifest, path = releases.add("1.0.0")
    installer.apply(manifest, path)
    assert installer.verify_installed(trusted()) == []
    path.write_bytes(b"changed")
    assert installer.verify_installed(trusted()) == [
        "the kept artifact of 1.0.0: the download is 7 bytes, the manifest says "
        f"{manifest.artifact.size}; refusing"
    ]


def test_verify_installed_explains_a_version_not_installed_by_the_agent(
    installer: Installer, layout: install.Layout
) -> None:
    assert installer.verify_installed(trusted()) == ["nothing is installed"]
    (layout.versions / "0.9.0").mkdir(parents=True)
    install.switch(layout, "0.9.0")
    problems = installer.verify_installed(trusted())
    assert problems == [
        "no signed manifest is kept for 0.9.0 (installed by something other than the agent)"
    ]
