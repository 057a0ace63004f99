"""Unpacking a verified artifact (.tar.gz, .tar or .zip) without trusting its contents.

A signed artifact is still only as careful as whoever built it, so every entry is checked:

- its path is relative, has no ``..``, no backslash, no drive letter, and does not pass through
  a symlink unpacked earlier (which could point anywhere);
- it is a regular file, a directory, or (tar only) a symlink whose target stays inside the
  version directory. Hard links, devices, FIFOs and zip symlinks are refused;
- modes lose setuid/setgid/sticky and world-write; every file is fsynced, so that the rename
  that publishes the version directory publishes complete files.

After unpacking, every symlink is resolved once more by the kernel's rules (``realpath``): a
chain of individually harmless links that together leave the directory is refused too.

Before anything is written, the sizes the archive declares are held against the expansion
limits (:func:`check_expansion`): a zip or tar bomb is refused as a suspicious archive, not
reported as a lack of disk space.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from client_agent.errors import ArchiveRefusedError, InstallError, SuspiciousArchiveError
from client_agent.files import CHUNK, crash_point, fsync_dir

__all__ = [
    "RATIO_FLOOR",
    "check_expansion",
    "extract",
    "is_zip",
    "unpacked_size",
]


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    unsafe = (
        not name
        or path.is_absolute()
        or name.startswith(("/", "\\"))
        or ".." in path.parts
        or "\\" in name
        or "\0" in name
        or (len(name) > 1 and name[1] == ":")  # C:... is absolute on Windows
    )
    if unsafe:
        raise ArchiveRefusedError(f"the archive holds an unsafe path {name!r}; refusing to install")
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


def _destination(target: Path, parts: tuple[str, ...], name: str) -> Path:
    """Where an entry goes; refuses a path that runs through a symlink already unpacked."""
    here = target
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise ArchiveRefusedError(
                f"the archive's entry {name!r} passes through a symlink; refusing to install"
            )
    dest = here / parts[-1]
    if dest.is_symlink():
        raise ArchiveRefusedError(f"the archive holds {name!r} twice; refusing to install")
    return dest


def _check_link(root: Path, link: Path, target: str) -> None:
    if os.path.isabs(target) or target.startswith("\\"):
        raise ArchiveRefusedError(
            f"the archive's symlink {link.name} points to an absolute path; refusing"
        )
    resolved = os.path.normpath(os.path.join(os.path.dirname(link), target))
    if not resolved.startswith(str(root) + os.sep) and resolved != str(root):
        raise ArchiveRefusedError(
            f"the archive's symlink {link.name} escapes the installation; refusing"
        )


def _write_file(source: IO[bytes], dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a symlink that appeared at ``dest`` is not followed (belt and braces).
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(dest, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)
        # On the open file, not the path: owner may always read and write; nobody gets
        # setuid/setgid/sticky or world-write.
        os.fchmod(out.fileno(), mode & 0o755 | 0o600)
        out.flush()
        os.fsync(out.fileno())


def _tar_entries(archive: Path, target: Path, version: str) -> Iterator[str]:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        strip = _strip_common_root([_safe_member(m.name) for m in members], version)
        for member in members:
            parts = _safe_member(member.name).parts[strip:]
            if not parts:
                continue
            dest = _destination(target, parts, member.name)
            if member.isdir():
                if dest.exists() and not dest.is_dir():
                    raise ArchiveRefusedError(f"the archive holds {member.name!r} twice; refusing")
                dest.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    raise InstallError(f"cannot read {member.name} from the archive")
                with source:
                    _write_file(source, dest, member.mode)
            elif member.issym():
                _check_link(target, dest, member.linkname)
                if dest.exists():
                    raise ArchiveRefusedError(f"the archive holds {member.name!r} twice; refusing")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(member.linkname)
            else:
                raise ArchiveRefusedError(
                    f"the archive holds {member.name!r}, which is not a file, "
                    "directory or symlink (hard links and devices are refused)"
                )
            yield member.name


def _zip_entries(archive: Path, target: Path, version: str) -> Iterator[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        strip = _strip_common_root([_safe_member(i.filename) for i in infos], version)
        for info in infos:
            parts = _safe_member(info.filename).parts[strip:]
            if not parts:
                continue
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveRefusedError(
                    f"the archive holds {info.filename!r}, which is not a file or directory "
                    "(zip symlinks and devices are refused)"
                )
            dest = _destination(target, parts, info.filename)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as source:
                    _write_file(source, dest, mode or 0o644)
            yield info.filename


def _check_links_resolve_inside(target: Path) -> None:
    root = target.resolve()
    for path in target.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            name = path.relative_to(target)
            raise ArchiveRefusedError(
                f"the archive's symlink {name} escapes the installation; refusing"
            )


def _fsync_tree(target: Path) -> None:
    for directory, _, _ in os.walk(target):
        fsync_dir(Path(directory))


def is_zip(archive: Path, filename: str) -> bool:
    """Whether the artifact is a zip (by name, else by content); anything else is read as tar."""
    return filename.lower().endswith(".zip") or zipfile.is_zipfile(archive)


def unpacked_size(archive: Path, filename: str) -> int:
    """Bytes the archive's files will take once unpacked, from its own headers.

    Used for the free-space check before installing; the copy itself never writes more than
    these declared sizes (tarfile and zipfile both stop at them).
    """
    try:
        if is_zip(archive, filename):
            with zipfile.ZipFile(archive) as zf:
                return sum(i.file_size for i in zf.infolist())
        with tarfile.open(archive, "r:*") as tar:
            return sum(m.size for m in tar.getmembers() if m.isfile())
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InstallError(f"{filename}: not a readable .tar.gz or .zip archive: {exc}") from None


# The ratio is judged against at least this many bytes of archive: a small archive of text may
# compress far better than 100:1 and still be harmless.
RATIO_FLOOR = 1024 * 1024


def check_expansion(
    archive: Path, filename: str, unpacked: int, max_ratio: float, max_bytes: int
) -> None:
    """Refuse an archive whose files would take more than ``max_bytes``, or more than
    ``max_ratio`` times the archive's own size (judged on at least ``RATIO_FLOOR`` bytes).

    Raises:
        SuspiciousArchiveError: over either limit (nothing was written).
    """
    size = archive.stat().st_size
    if unpacked > max_bytes:
        raise SuspiciousArchiveError(
            f"suspicious archive: {filename} would unpack to {unpacked} bytes, more than "
            f"limits.max_unpacked_bytes ({max_bytes}); refusing to install"
        )
    if unpacked > max_ratio * max(size, RATIO_FLOOR):
        raise SuspiciousArchiveError(
            f"suspicious archive: {filename} ({size} bytes) would unpack to {unpacked} bytes, "
            f"{unpacked / max(size, 1):.0f} times its size (limits.max_expansion_ratio is "
            f"{max_ratio:g}); refusing to install"
        )


def extract(archive: Path, filename: str, target: Path, version: str) -> None:
    """Unpack ``archive`` into the empty directory ``target``, refusing anything unsafe.

    Raises:
        InstallError: an unsafe entry or an unreadable archive (``target`` is then partial:
            the caller removes it).
    """
    entries = (
        _zip_entries(archive, target, version)
        if is_zip(archive, filename)
        else _tar_entries(archive, target, version)
    )
    try:
        for count, _ in enumerate(entries):
            if count == 0:
                crash_point("extracting")  # a partial staging directory exists now
        _check_links_resolve_inside(target)
        _fsync_tree(target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise InstallError(f"cannot unpack {filename}: {exc}") from None
    except OSError as exc:
        raise InstallError(f"cannot unpack {filename}: {exc.strerror or exc}") from None
