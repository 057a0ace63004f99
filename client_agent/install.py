"""Installing a verified artifact: stage beside, switch atomically, check health, roll back.

Layout: ``<install>/versions/<version>/`` holds each complete version; ``<install>/current`` is a
symlink to one of them. The apply, and why a crash at any point is harmless:

1. Extract into ``versions/.staging-<version>-<pid>`` (refusing ``..``, absolute paths, links
   that escape, devices), then rename it to ``versions/<version>``: a version directory exists
   only once complete. A crash leaves a staging directory, removed by :func:`recover`.
2. Write a journal (``from``, ``to``) in the state directory, then switch ``current``: a new
   symlink beside it and ``os.replace`` over it (atomic on POSIX), then fsync the directory.
   ``current`` always names a complete version, old or new.
3. Run the health check in the new version. On failure switch back. A crash between the switch
   and the end of the health check leaves the journal: :func:`recover` switches back, because
   an unchecked version must not stay current.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from client_agent.errors import InstallError

STAGING_PREFIX = ".staging-"
JOURNAL = "apply-journal.json"


def _crash_point(step: str) -> None:
    """Test hook: die like ``kill -9`` at a named step (only when the variable asks for it)."""
    if os.environ.get("VIGOR_AGENT_TEST_CRASH_AT") == step:
        os.kill(os.getpid(), 9)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write → fsync → rename → fsync the directory (files the agent trusts later)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts or "\\" in name:
        raise InstallError(f"the archive holds an unsafe path {name!r}; refusing to install")
    return path


def _strip_common_root(names: list[PurePosixPath], version: str) -> int:
    """1 when every entry lives under one top-level directory named for the version
    (``acme-erp-4.2.0/...``, as release archives are commonly made), else 0.

    Requiring the version in its name keeps an archive that holds only ``bin/`` intact.
    """
    tops = {n.parts[0] for n in names if n.parts}
    if len(tops) == 1 and version in next(iter(tops)) and any(len(n.parts) > 1 for n in names):
        return 1
    return 0


def _extract_tar(archive: Path, target: Path, version: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            strip = _strip_common_root([_safe_member(m.name) for m in members], version)
            for member in members:
                parts = _safe_member(member.name).parts[strip:]
                if not parts:
                    continue
                dest = target.joinpath(*parts)
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:
                        raise InstallError(f"cannot read {member.name} from the archive")
                    with source, dest.open("wb") as out:
                        shutil.copyfileobj(source, out, 1024 * 1024)
                    dest.chmod(member.mode & 0o755 | 0o600)
                elif member.issym():
                    _check_link(target, dest, member.linkname)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.symlink_to(member.linkname)
                else:
                    raise InstallError(
                        f"the archive holds {member.name!r}, which is not a file, "
                        "directory or symlink (hard links and devices are refused)"
                    )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InstallError(f"cannot extract the archive: {exc}") from None


def _check_link(root: Path, link: Path, target: str) -> None:
    if os.path.isabs(target):
        raise InstallError(
            f"the archive's symlink {link.name} points to an absolute path; refusing"
        )
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    if not resolved.startswith(str(root) + os.sep):
        raise InstallError(f"the archive's symlink {link.name} escapes the installation; refusing")


def _extract_zip(archive: Path, target: Path, version: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            strip = _strip_common_root([_safe_member(i.filename) for i in infos], version)
            for info in infos:
                parts = _safe_member(info.filename).parts[strip:]
                if not parts:
                    continue
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise InstallError(
                        f"the archive holds a symlink {info.filename!r}; zip symlinks are refused"
                    )
                dest = target.joinpath(*parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, dest.open("wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
                if mode:
                    dest.chmod(mode & 0o755 | 0o600)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InstallError(f"cannot extract the archive: {exc}") from None


@dataclass(frozen=True)
class Layout:
    install_dir: Path
    state_dir: Path

    @property
    def versions(self) -> Path:
        return self.install_dir / "versions"

    @property
    def current(self) -> Path:
        return self.install_dir / "current"

    @property
    def journal(self) -> Path:
        return self.state_dir / JOURNAL

    def current_version(self) -> str | None:
        """The version ``current`` points at, or None when nothing is installed."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        return Path(target).name

    def version_dir(self, version: str) -> Path:
        if "/" in version or version.startswith("."):
            raise InstallError(f"not a version directory name: {version!r}")
        return self.versions / version


def stage(layout: Layout, archive: Path, filename: str, version: str) -> Path:
    """Extract ``archive`` into ``versions/<version>`` (complete or absent, never half)."""
    final = layout.version_dir(version)
    if final.is_dir():
        return final
    layout.versions.mkdir(parents=True, exist_ok=True)
    staging = layout.versions / f"{STAGING_PREFIX}{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        name = filename.lower()
        _crash_point("extracting")
        if name.endswith(".zip") or zipfile.is_zipfile(archive):
            _extract_zip(archive, staging, version)
        elif name.endswith((".tar.gz", ".tgz", ".tar")) or tarfile.is_tarfile(archive):
            _extract_tar(archive, staging, version)
        else:
            raise InstallError(f"{filename}: not a .tar.gz or .zip archive")
        _crash_point("extracted")
        os.rename(staging, final)
        fsync_dir(layout.versions)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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


def health_check(layout: Layout, command: tuple[str, ...], timeout: float) -> None:
    """Run the configured health check in ``current``; raise ``InstallError`` when it fails."""
    if not command:
        return
    try:
        result = subprocess.run(
            list(command),
            cwd=layout.current,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"the health check could not run: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode("utf-8", "replace").strip().splitlines()
        raise InstallError(
            f"the health check failed (exit {result.returncode})"
            + (f": {detail[-1]}" if detail else "")
        )


def begin(layout: Layout, from_version: str | None, to_version: str) -> None:
    write_atomic(layout.journal, json.dumps({"from": from_version, "to": to_version}).encode())


def finish(layout: Layout) -> None:
    layout.journal.unlink(missing_ok=True)
    fsync_dir(layout.state_dir)


def recover(layout: Layout) -> str | None:
    """Clean what an interrupted run left; returns the version switched back from, if any."""
    if layout.versions.is_dir():
        for leftover in layout.versions.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
    if layout.install_dir.is_dir():
        for tmp in layout.install_dir.glob(".current-*"):
            tmp.unlink(missing_ok=True)
    if not layout.journal.exists():
        return None
    try:
        journal = json.loads(layout.journal.read_text())
    except (OSError, ValueError):
        journal = {}
    undone = None
    previous, attempted = journal.get("from"), journal.get("to")
    if layout.current_version() == attempted and previous and layout.version_dir(previous).is_dir():
        switch(layout, previous)  # the new version was never confirmed healthy
        undone = attempted
    finish(layout)
    return undone
