"""Unpacking without trusting the archive: every unsafe entry refused, safe ones kept exactly."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from client_agent.archive import extract, unpacked_size
from client_agent.errors import ArchiveRefusedError, InstallError
from tests.common.agent_sim import tar_gz, zip_archive

APP = {"bin/app": "#!/bin/sh\necho hi\n", "README": "hello"}

UNSAFE: dict[str, tuple[bytes, str]] = {
    "dot-dot": (tar_gz({**APP, "a/../../x": "x"}), "unsafe path"),
    "absolute": (tar_gz({**APP, "/etc/cron.d/x": "x"}), "unsafe path"),
    "backslash": (tar_gz({**APP, "..\\x": "x"}), "unsafe path"),
    "drive-letter": (tar_gz({**APP, "C:/x": "x"}), "unsafe path"),
    "symlink-out": (tar_gz(APP, symlinks={"l": "../../outside"}), "escapes the installation"),
    "symlink-absolute": (tar_gz(APP, symlinks={"l": "/etc"}), "absolute path"),
    "symlink-chain": (
        tar_gz(APP, symlinks={"sub/here": "..", "sub/up": "here/.."}),
        "escapes the installation",
    ),
    "through-symlink": (
        tar_gz(APP, symlinks={"lnk": "bin"}, after={"lnk/x": "x"}),
        "passes through a symlink",
    ),
    "file-over-symlink": (
        tar_gz(APP, symlinks={"README2": "README"}, after={"README2": "x"}),
        "twice",
    ),
    "hard-link": (tar_gz(APP, hardlinks={"h": "README"}), "hard links"),
    "char-device": (tar_gz(APP, devices=["tty"]), "devices"),
    "zip-dot-dot": (zip_archive({**APP, "../x": "x"}), "unsafe path"),
    "zip-symlink": (zip_archive(APP, symlinks={"l": "README"}), "zip symlinks"),
}


@pytest.mark.parametrize(("archive", "message"), UNSAFE.values(), ids=UNSAFE.keys())
def test_unsafe_entries_are_refused(tmp_path: Path, archive: bytes, message: str) -> None:
    source = tmp_path / "artifact"
    source.write_bytes(archive)
    target = tmp_path / "deep" / "staging"
    target.mkdir(parents=True)
    name = "a.zip" if archive[:2] == b"PK" else "a.tar.gz"
    with pytest.raises(ArchiveRefusedError, match=re.escape(message)) as refused:
        extract(source, name, target, "1.0.0")
    assert refused.value.code == "archive_refused"
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()


def test_a_safe_archive_is_unpacked_exactly_with_safe_modes(tmp_path: Path) -> None:
    source = tmp_path / "a.tar.gz"
    source.write_bytes(
        tar_gz(
            {"bin/app": "#!/bin/sh\n", "etc/conf": "k=v"},
            symlinks={"bin/alias": "app", "conf": "etc/conf"},
            mode=0o6777,  # setuid, setgid, world-writable: none of it survives
        )
    )
    target = tmp_path / "v"
    target.mkdir()
    extract(source, source.name, target, "1.0.0")
    assert (target / "etc" / "conf").read_text() == "k=v"
    assert os.readlink(target / "bin" / "alias") == "app"
    assert (target / "conf").read_text() == "k=v"
    mode = stat.S_IMODE((target / "bin" / "app").stat().st_mode)
    assert mode == 0o755


def test_a_top_level_directory_named_for_the_version_is_dropped(tmp_path: Path) -> None:
    source = tmp_path / "a.zip"
    source.write_bytes(zip_archive({"app-2.0.0/bin/app": "x", "app-2.0.0/README": "r"}))
    target = tmp_path / "v"
    target.mkdir()
    extract(source, source.name, target, "2.0.0")
    assert sorted(p.name for p in target.iterdir()) == ["README", "bin"]


def test_a_lone_directory_not_named_for_the_version_is_kept(tmp_path: Path) -> None:
    source = tmp_path / "a.tar.gz"
    source.write_bytes(tar_gz({"bin/app": "x", "bin/tool": "y"}))
    target = tmp_path / "v"
    target.mkdir()
    extract(source, source.name, target, "2.0.0")
    assert (target / "bin" / "app").exists()


def test_unpacked_size_is_read_from_the_headers(tmp_path: Path) -> None:
    source = tmp_path / "a.tar.gz"
    source.write_bytes(tar_gz({"a": "x" * 1000, "b": "y" * 24}))
    assert unpacked_size(source, source.name) == 1024
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(InstallError, match="not a readable"):
        unpacked_size(junk, junk.name)
