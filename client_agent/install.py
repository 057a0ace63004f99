"""Installing a verified artifact: stage beside, switch atomically, check health, roll back.

Layout: ``<install>/versions/<version>/`` holds each complete version; ``<install>/current`` is a
symlink to one of them. The apply, and why a crash (or ``kill -9``) at any point is harmless:

1. Unpack into ``versions/.staging-<version>-<pid>`` (see archive.py), fsync, then rename it to
   ``versions/<version>``: a version directory exists only once complete. A crash leaves a
   staging directory, which :func:`recover` removes. A version directory that must be replaced
   is first renamed to ``versions/.trash-…`` (atomic) and only then deleted.
2. Write a journal (``from``, ``to``, ``phase: switching``) in the state directory, then switch
   ``current``: a new symlink beside it and ``os.replace`` over it (atomic on POSIX), then fsync
   the directory. ``current`` always names a complete version, old or new.
3. Run the health check in the new version. On failure switch back. Once it passed, the journal
   says ``phase: confirmed`` before any bookkeeping.

:func:`recover`, run first by every command, reads a journal left behind: ``switching`` means
the new version was never confirmed healthy, so ``current`` goes back to ``from``; ``confirmed``
means the apply succeeded and only its bookkeeping is finished.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client_agent import archive
from client_agent.errors import InstallError
from client_agent.files import crash_point, fsync_dir, write_atomic

__all__ = [
    "JOURNAL",
    "STAGING_PREFIX",
    "TRASH_PREFIX",
    "Layout",
    "Recovery",
    "begin",
    "check_free_space",
    "confirm",
    "finish",
    "health_check",
    "prune",
    "recover",
    "stage",
    "switch",
]

STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
JOURNAL = "apply-journal.json"


@dataclass(frozen=True)
class Layout:
    """Where versions, ``current``, the journal and the files kept for them live."""

    install_dir: Path
    state_dir: Path

    @property
    def versions(self) -> Path:
        """``<install>/versions``: one complete directory per version."""
        return self.install_dir / "versions"

    @property
    def current(self) -> Path:
        """``<install>/current``: the symlink the application is run through."""
        return self.install_dir / "current"

    @property
    def journal(self) -> Path:
        """The apply journal; present only while an apply or rollback is in flight."""
        return self.state_dir / JOURNAL

    @property
    def downloads(self) -> Path:
        """``<state>/downloads``: ``<sha256>.part`` while downloading, ``<sha256>`` once verified."""
        return self.state_dir / "downloads"

    @property
    def manifests(self) -> Path:
        """``<state>/manifests``: the signed manifest of each version kept."""
        return self.state_dir / "manifests"

    @property
    def pending(self) -> Path:
        """``<state>/pending.json``: the verified offer `download` fetched, for `apply`."""
        return self.state_dir / "pending.json"

    def downloaded(self, sha256: str) -> Path:
        """Where the verified artifact with this SHA-256 is kept."""
        return self.downloads / sha256

    def kept_manifest(self, version: str) -> Path:
        """Where the signed manifest of ``version`` is kept (for `verify` and patches)."""
        return self.manifests / f"{version}.json"

    def kept_artifact_digests(self, version: str) -> list[str]:
        """The SHA-256 of every artifact ``version``'s kept manifest names; none when no
        manifest is kept or it cannot be read (it was verified when written, not now: these
        name files to keep or to patch from, which are hashed again before any use)."""
        try:
            artifacts = json.loads(self.kept_manifest(version).read_text())["signed"]["artifacts"]
            specs = list(artifacts.values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
        return [
            spec["sha256"]
            for spec in specs
            if isinstance(spec, dict) and _is_sha256(spec.get("sha256"))
        ]

    def current_version(self) -> str | None:
        """The version ``current`` points at, or None when nothing is installed."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return Path(target).name

    def version_dir(self, version: str) -> Path:
        """``versions/<version>``, refusing a name that could leave the directory."""
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise InstallError(f"not a version directory name: {version!r}")
        return self.versions / version

    def check_usable(self) -> None:
        """Refuse to start when ``current`` exists but is not a symlink the agent can swap."""
        if self.current.exists() and not self.current.is_symlink():
            raise InstallError(
                f"{self.current} is a real directory, not a symlink: move it to "
                f"{self.versions}/<version> and link current to it (see docs/agent.md)"
            )


def _is_sha256(value: object) -> bool:
    """A lowercase hex SHA-256, and so a safe file name under ``downloads/``."""
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _discard(layout: Layout, path: Path) -> None:
    """Remove a directory so that a crash midway never leaves a half-deleted version behind."""
    if not path.exists():
        return
    trash = layout.versions / f"{TRASH_PREFIX}{path.name}-{os.getpid()}"
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def check_free_space(directory: Path, needed: int, margin: int, what: str) -> None:
    """Refuse early, before a byte is written, when ``needed`` bytes (+ margin) do not fit."""
    probe = directory
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + margin:
        raise InstallError(
            f"not enough free space in {probe} for {what}: {needed + margin} bytes needed "
            f"(including a margin of {margin}), {free} free"
        )


def stage(
    layout: Layout,
    artifact: Path,
    filename: str,
    version: str,
    margin: int,
    max_ratio: float = 100.0,
    max_bytes: int = 16 * 1024**3,
) -> Path:
    """Unpack ``artifact`` into ``versions/<version>`` (complete or absent, never half).

    The archive's declared sizes are held against ``max_ratio`` and ``max_bytes`` (a bomb is
    refused as suspicious) before the free space is checked.
    """
    final = layout.version_dir(version)
    if layout.current_version() == version:
        raise InstallError(f"version {version} is already current")
    layout.versions.mkdir(parents=True, exist_ok=True)
    unpacked = archive.unpacked_size(artifact, filename)
    archive.check_expansion(artifact, filename, unpacked, max_ratio, max_bytes)
    check_free_space(layout.versions, unpacked, margin, f"version {version}")
    staging = layout.versions / f"{STAGING_PREFIX}{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        archive.extract(artifact, filename, staging, version)
        crash_point("extracted")
        # A directory of this version left by an earlier attempt may hold anything: replace it.
        _discard(layout, final)
        os.rename(staging, final)
        fsync_dir(layout.versions)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    crash_point("staged")
    return final


def switch(layout: Layout, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` atomically."""
    target = layout.version_dir(version)
    if not target.is_dir():
        raise InstallError(f"version {version} is not installed")
    tmp = layout.install_dir / f".current-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / version)
    os.replace(tmp, layout.current)
    fsync_dir(layout.install_dir)


def health_check(layout: Layout, version: str, command: tuple[str, ...], timeout: float) -> None:
    """Run the configured health check in ``versions/<version>``; ``InstallError`` if it fails."""
    if not command:
        return
    try:
        # A session of its own: on time-out the whole group goes, children included.
        process = subprocess.Popen(
            list(command),
            cwd=layout.version_dir(version),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise InstallError(f"the health check failed: cannot run {command[0]}: {exc}") from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise InstallError(f"the health check failed: it ran longer than {timeout:g} s") from None
    if process.returncode != 0:
        detail = (err or out).decode("utf-8", "replace").strip().splitlines()
        raise InstallError(
            f"the health check failed (exit {process.returncode})"
            + (f": {detail[-1][:200]}" if detail else "")
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, ProcessLookupError, PermissionError):  # not POSIX, or already gone
        process.kill()
    process.communicate()


def begin(layout: Layout, from_version: str | None, to_version: str, kind: str = "apply") -> None:
    """Journal an apply (or a rollback: ``kind``) about to switch ``current``."""
    journal = {"kind": kind, "from": from_version, "to": to_version, "phase": "switching"}
    write_atomic(layout.journal, json.dumps(journal).encode())


def confirm(layout: Layout, from_version: str | None, to_version: str, kind: str = "apply") -> None:
    """Journal that the new version passed its health check: it stays, whatever happens next."""
    journal = {"kind": kind, "from": from_version, "to": to_version, "phase": "confirmed"}
    write_atomic(layout.journal, json.dumps(journal).encode())


def finish(layout: Layout) -> None:
    """The apply is over (done or undone): remove the journal."""
    layout.journal.unlink(missing_ok=True)
    fsync_dir(layout.state_dir)


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` found: an apply it undid, or one it completed."""

    undone: str | None = None  # version switched away from (never confirmed healthy)
    completed: str | None = None  # version whose confirmed apply was finished
    from_version: str | None = None
    kind: str = "apply"  # or "rollback"


def recover(layout: Layout) -> Recovery:
    """Clean what an interrupted run left, and settle an apply that was in flight."""
    if layout.versions.is_dir():
        for prefix in (STAGING_PREFIX, TRASH_PREFIX):
            for leftover in layout.versions.glob(f"{prefix}*"):
                shutil.rmtree(leftover, ignore_errors=True)
    if layout.install_dir.is_dir():
        for tmp in layout.install_dir.glob(".current-*"):
            tmp.unlink(missing_ok=True)
    if not layout.journal.exists():
        return Recovery()
    try:
        journal: dict[str, Any] = json.loads(layout.journal.read_text())
    except (OSError, ValueError):
        journal = {}
    previous, attempted = journal.get("from"), journal.get("to")
    kind = str(journal.get("kind", "apply"))
    current = layout.current_version()
    result = Recovery()
    if journal.get("phase") == "confirmed" and current == attempted:
        result = Recovery(completed=attempted, from_version=previous, kind=kind)
    elif current == attempted and attempted is not None:
        # Switched but never confirmed healthy: it must not stay current.
        if previous and layout.version_dir(previous).is_dir():
            switch(layout, previous)
        else:
            layout.current.unlink(missing_ok=True)
        result = Recovery(undone=attempted, from_version=previous, kind=kind)
    finish(layout)
    return result


def prune(layout: Layout, keep: set[str]) -> None:
    """Remove version directories other than ``keep`` (current and previous): disk is finite."""
    if not layout.versions.is_dir():
        return
    for path in layout.versions.iterdir():
        if path.is_dir() and not path.name.startswith(".") and path.name not in keep:
            _discard(layout, path)
