"""The install layout on its own: atomic switch, staging, and recovery from every leftover."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from client_agent import install
from client_agent.errors import InstallError, SuspiciousArchiveError
from tests.common.agent_sim import app_files, tar_gz


@pytest.fixture
def layout(tmp_path: Path) -> install.Layout:
    layout = install.Layout(tmp_path / "app", tmp_path / "state")
    layout.state_dir.mkdir()
    for version in ("1.0.0", "1.1.0"):
        (layout.versions / version).mkdir(parents=True)
    install.switch(layout, "1.0.0")
    return layout


def journal(layout: install.Layout, phase: str, kind: str = "apply") -> None:
    layout.journal.write_text(
        json.dumps({"kind": kind, "from": "1.0.0", "to": "1.1.0", "phase": phase})
    )


def test_switch_replaces_the_link_atomically(layout: install.Layout) -> None:
    install.switch(layout, "1.1.0")
    assert os.readlink(layout.current) == "versions/1.1.0"
    assert layout.current_version() == "1.1.0"
    assert not list(layout.install_dir.glob(".current-*"))
    with pytest.raises(InstallError, match="not installed"):
        install.switch(layout, "9.9.9")


def test_an_unconfirmed_switch_is_undone(layout: install.Layout) -> None:
    install.switch(layout, "1.1.0")
    journal(layout, "switching")
    found = install.recover(layout)
    assert found == install.Recovery(undone="1.1.0", from_version="1.0.0")
    assert layout.current_version() == "1.0.0"
    assert not layout.journal.exists()


def test_a_confirmed_switch_is_kept(layout: install.Layout) -> None:
    install.switch(layout, "1.1.0")
    journal(layout, "confirmed")
    assert install.recover(layout).completed == "1.1.0"
    assert layout.current_version() == "1.1.0"


def test_a_journal_written_before_the_switch_changes_nothing(layout: install.Layout) -> None:
    journal(layout, "switching")
    assert install.recover(layout) == install.Recovery()
    assert layout.current_version() == "1.0.0"
    assert not layout.journal.exists()


def test_an_unreadable_journal_is_dropped(layout: install.Layout) -> None:
    layout.journal.write_text("{torn")
    assert install.recover(layout) == install.Recovery()
    assert layout.current_version() == "1.0.0"


def test_leftovers_of_a_crash_are_removed(layout: install.Layout) -> None:
    (layout.versions / ".staging-1.2.0-999" / "bin").mkdir(parents=True)
    (layout.versions / ".trash-0.9.0-999").mkdir()
    (layout.install_dir / ".current-999").symlink_to("versions/1.1.0")
    install.recover(layout)
    assert sorted(p.name for p in layout.versions.iterdir()) == ["1.0.0", "1.1.0"]
    assert not list(layout.install_dir.glob(".current-*"))


def test_stage_replaces_a_stale_directory_of_the_same_version(
    layout: install.Layout, tmp_path: Path
) -> None:
    (layout.versions / "1.1.0" / "stale").write_text("left by an earlier attempt")
    artifact = tmp_path / "a.tar.gz"
    artifact.write_bytes(tar_gz(app_files("1.1.0")))
    install.stage(layout, artifact, artifact.name, "1.1.0", margin=0)
    assert sorted(p.name for p in (layout.versions / "1.1.0").iterdir()) == ["VERSION", "bin"]


def test_stage_refuses_to_replace_the_current_version(
    layout: install.Layout, tmp_path: Path
) -> None:
    artifact = tmp_path / "a.tar.gz"
    artifact.write_bytes(tar_gz(app_files("1.0.0")))
    with pytest.raises(InstallError, match="already current"):
        install.stage(layout, artifact, artifact.name, "1.0.0", margin=0)


def test_a_real_current_directory_is_explained(tmp_path: Path) -> None:
    layout = install.Layout(tmp_path / "app", tmp_path / "state")
    layout.current.mkdir(parents=True)
    with pytest.raises(InstallError, match="is a real directory, not a symlink"):
        layout.check_usable()


@pytest.mark.parametrize("name", ["", ".", "..", "../x", ".staging-1", "a/b"])
def test_version_names_that_could_leave_the_directory_are_refused(
    layout: install.Layout, name: str
) -> None:
    with pytest.raises(InstallError, match="not a version directory name"):
        layout.version_dir(name)


def test_prune_keeps_current_and_previous(layout: install.Layout) -> None:
    (layout.versions / "0.9.0").mkdir()
    install.prune(layout, {"1.0.0", "1.1.0"})
    assert sorted(p.name for p in layout.versions.iterdir()) == ["1.0.0", "1.1.0"]


def test_a_health_check_that_hangs_is_killed_with_its_children(
    layout: install.Layout, tmp_path: Path
) -> None:
    marker = tmp_path / "survived"
    script = f"sleep 0.5; touch {marker}"
    with pytest.raises(InstallError, match=re.escape("ran longer than 0.2 s")):
        install.health_check(layout, "1.0.0", ("sh", "-c", f"({script}) & wait"), 0.2)
    time.sleep(0.8)
    assert not marker.exists(), "the health check's children were killed too"


def test_kept_artifact_digests_name_only_sha256_files(layout: install.Layout) -> None:
    good = "ab" * 32
    layout.manifests.mkdir(parents=True, exist_ok=True)
    layout.kept_manifest("1.1.0").write_text(
        json.dumps(
            {
                "signed": {
                    "artifacts": {
                        "linux-x86_64": {"sha256": good},
                        "any": {"sha256": "../../outside"},
                        "windows-x86_64": "not a spec",
                        "macos-aarch64": {"size": 3},
                    }
                }
            }
        )
    )
    assert layout.kept_artifact_digests("1.1.0") == [good]
    assert layout.kept_artifact_digests("9.9.9") == [], "no manifest kept"
    layout.kept_manifest("1.0.0").write_text("{not json")
    assert layout.kept_artifact_digests("1.0.0") == [], "an unreadable manifest names nothing"


BOMB = 110 * 1024 * 1024  # zeros: compresses about 1000:1, past the default ratio of 100


class Zeros(io.RawIOBase):
    """``size`` zero bytes, read in pieces (a bomb is made without holding it in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def zip_bomb(path: Path) -> Path:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("bin/data", "w") as out,
    ):
        shutil.copyfileobj(Zeros(BOMB), out, 1024 * 1024)
    return path


def tar_bomb(path: Path) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("bin/data")
        info.size = BOMB
        tar.addfile(info, io.BufferedReader(Zeros(BOMB)))
    return path


def nothing_staged(layout: install.Layout) -> None:
    assert sorted(p.name for p in layout.versions.iterdir()) == ["1.0.0", "1.1.0"]
    assert not (layout.versions / "1.1.0" / "bin").exists()


def test_a_zip_bomb_is_refused_as_suspicious_not_as_a_lack_of_space(
    layout: install.Layout, tmp_path: Path
) -> None:
    bomb = zip_bomb(tmp_path / "a.zip")
    assert bomb.stat().st_size < 1024 * 1024
    # A margin no disk has: were the expansion not judged first, this would say "free space".
    with pytest.raises(SuspiciousArchiveError, match=r"^suspicious archive: a\.zip \(\d+ bytes\)"):
        install.stage(layout, bomb, bomb.name, "1.2.0", margin=1 << 60)
    nothing_staged(layout)


def test_a_tar_bomb_over_the_absolute_limit_is_refused_as_suspicious(
    layout: install.Layout, tmp_path: Path
) -> None:
    bomb = tar_bomb(tmp_path / "a.tar.gz")
    with pytest.raises(SuspiciousArchiveError, match=r"more than limits\.max_unpacked_bytes") as e:
        install.stage(
            layout, bomb, bomb.name, "1.2.0", margin=0, max_ratio=1e6, max_bytes=64 * 1024**2
        )
    assert e.value.code == "archive_suspicious" and e.value.exit_code == 40
    nothing_staged(layout)
    # Within limits raised by the configuration, the same archive unpacks.
    install.stage(layout, bomb, bomb.name, "1.2.0", margin=0, max_ratio=1e6, max_bytes=BOMB)
    assert (layout.versions / "1.2.0" / "bin" / "data").stat().st_size == BOMB
