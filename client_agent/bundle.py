"""Importing an offline bundle: the same verification as online, with no network at all.

The order of the checks (see server/domain/bundles.py for the format):

1. Every member is a regular file with an expected name; ``bundle.json`` is last.
2. The root chain in the bundle is walked from the agent's trusted root, each link verified.
3. ``bundle.json`` is canonical JSON signed by the check role, for this license (the SHA-256 of
   the configured key), product and channel (the configured one, or ``stable``, whose releases
   every channel takes); the SHA-256 of every byte before it matches its ``content``,
   and only zeros follow it: a one-byte change anywhere is refused.
4. Time: the machine's clock, unless it is implausible (before 2024, or before the bundle was
   issued), in which case the bundle's own signed ``issued_at`` is used and the user is told.
   The root and the bundle must both be unexpired at that time.
5. The newest release in the bundle newer than installed (respecting ``min_from``) whose manifest
   verifies (on the configured channel or stable: another channel refuses the bundle); its
   artifact is copied out with a size cap and checked by SHA-256; then the normal atomic apply
   with health check and rollback. Reports are queued for the next online run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from packaging.version import Version

from client_agent.agent import Agent
from client_agent.errors import (
    ArtifactError,
    ExpiredRootError,
    VerificationError,
    WrongTargetError,
)
from client_agent.files import write_atomic
from client_agent.installer import Outcome
from client_agent.roots import (
    EARLIEST_PLAUSIBLE,
    TrustedRoot,
    canonical,
    check_root_fresh,
    parse_time,
    verify_next_root,
    verify_role,
)
from client_agent.verify import (
    Manifest,
    check_manifest_channel,
    verify_manifest,
    version_of,
)

__all__ = [
    "BundleResult",
    "import_bundle",
    "judge_time",
]

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BundleResult:
    """What an import did, the signed statement it trusted, and a note when the clock was wrong."""

    outcome: Outcome
    statement: dict[str, Any]
    clock_note: str | None


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        name = member.name
        parts = name.split("/")
        allowed = (
            name == "bundle.json"
            or (len(parts) == 2 and parts[0] == "root" and parts[1].removesuffix(".json").isdigit())
            or (len(parts) == 2 and parts[0] == "manifests" and parts[1].endswith(".json"))
            or (len(parts) == 2 and parts[0] == "artifacts" and len(parts[1]) == 64)
        )
        if not member.isfile() or not allowed or name in members:
            raise VerificationError(f"the bundle holds an unexpected member {name!r}")
        members[name] = member
    if "bundle.json" not in members or tar.getmembers()[-1].name != "bundle.json":
        raise VerificationError("the bundle's signed statement is missing or not last")
    return members


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise VerificationError(f"{member.name} is larger than {limit} bytes")
    handle = tar.extractfile(member)
    if handle is None:
        raise VerificationError(f"cannot read {member.name}")
    with handle:
        return handle.read()


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise VerificationError(f"{name} is not JSON") from None


def _check_content(path: Path, statement_header: int, statement_end: int, content: Any) -> None:
    """Every byte before the statement hashes to what it says; only zeros come after it."""
    if not isinstance(content, dict) or content.get("length") != statement_header:
        raise VerificationError("the bundle's contents do not match its signed statement")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        left = statement_header
        while left:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        if digest.hexdigest() != content.get("sha256"):
            raise VerificationError(
                "the bundle was modified: its contents do not match the signed digest"
            )
        handle.seek(statement_end)
        while chunk := handle.read(CHUNK):
            if chunk.count(0) != len(chunk):
                raise VerificationError("the bundle was modified after its signed statement")


def _copy_out(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, manifest: Manifest
) -> None:
    if member.size != manifest.artifact.size:
        raise ArtifactError(
            f"the bundle's artifact is {member.size} bytes, the manifest says {manifest.artifact.size}"
        )
    source: IO[bytes] | None = tar.extractfile(member)
    if source is None:
        raise VerificationError(f"cannot read {member.name}")
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    with source, part.open("wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != manifest.artifact.sha256:
        part.unlink(missing_ok=True)
        raise ArtifactError("the bundle's artifact does not match its manifest's SHA-256")
    os.replace(part, dest)


def judge_time(now: datetime, issued: datetime) -> tuple[datetime, str | None]:
    """The time to judge expiry by: the clock, or the bundle's signed time when the clock is wrong."""
    if now < EARLIEST_PLAUSIBLE or now < issued:
        note = (
            f"this machine's clock says {now:%Y-%m-%d %H:%M} UTC, which cannot be right; "
            f"expiry was judged by the bundle's signed time ({issued:%Y-%m-%d %H:%M} UTC)"
        )
        return issued, note
    return now, None


def import_bundle(agent: Agent, path: Path, allow_downgrade: bool = False) -> BundleResult:
    """Verify ``path`` completely and apply the newest entitled release it holds."""
    agent.offline = True  # no network call, not even to deliver reports
    with agent.exclusive():
        agent.recover()
        return _import(agent, path, allow_downgrade)


def _import(agent: Agent, path: Path, allow_downgrade: bool) -> BundleResult:
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed below; bundles are plain tar
    except (OSError, tarfile.TarError) as exc:
        raise VerificationError(f"{path} is not a Vigor bundle: {exc}") from None
    with tar:
        try:
            members = _members(tar)
        except tarfile.TarError as exc:
            raise VerificationError(f"the bundle is damaged: {exc}") from None
        limit = agent.config.max_document_bytes
        root = agent.trusted_root()
        while f"root/{root.version + 1}.json" in members:
            document = _json(_read(tar, members[f"root/{root.version + 1}.json"], limit), "a root")
            root = verify_next_root(root, document)
            write_atomic(
                agent.state_dir / "root" / f"{root.version}.json", json.dumps(document).encode()
            )
        statement_member = members["bundle.json"]
        raw = _read(tar, statement_member, limit)
        document = _json(raw, "bundle.json")
        if canonical(document) != raw:
            raise VerificationError("bundle.json is not in canonical form: it was modified")
        statement = dict(verify_role(document, root, "check", "bundle"))
        _check_content(
            path,
            statement_member.offset,
            statement_member.offset_data + statement_member.size,
            statement.get("content"),
        )
        if (
            statement.get("license")
            != hashlib.sha256(agent.config.license_key.encode()).hexdigest()
        ):
            raise VerificationError("this bundle was made for another license")
        if statement.get("product") != agent.config.product:
            raise VerificationError(
                f"this bundle is for {statement.get('product')!r}, not {agent.config.product!r}"
            )
        channel = agent.config.channel
        if statement.get("channel") not in (channel, "stable"):
            raise WrongTargetError(
                f"this bundle is for channel {statement.get('channel')!r}, not {channel!r}"
            )
        issued = parse_time(statement.get("issued_at"), "bundle issue time")
        when, note = judge_time(agent.clock(), issued)
        _check_fresh(root, statement, when)
        manifest = _newest(tar, members, root, agent, statement, allow_downgrade)
        if manifest is None:
            return BundleResult(
                Outcome(False, None, "the bundle holds nothing newer than the installed version"),
                statement,
                note,
            )
        dest = agent.downloaded_path(manifest.artifact.sha256)
        _copy_out(tar, members[f"artifacts/{manifest.artifact.sha256}"], dest, manifest)
    return BundleResult(agent.apply(manifest, dest), statement, note)


def _check_fresh(root: TrustedRoot, statement: dict[str, Any], when: datetime) -> None:
    check_root_fresh(root, when)
    valid_until = parse_time(statement.get("valid_until"), "bundle expiry")
    if valid_until < when:
        raise ExpiredRootError(
            f"this bundle expired on {valid_until:%Y-%m-%d} (judged at {when:%Y-%m-%d}); ask for a new one"
        )


def _newest(
    tar: tarfile.TarFile,
    members: dict[str, tarfile.TarInfo],
    root: TrustedRoot,
    agent: Agent,
    statement: dict[str, Any],
    allow_downgrade: bool,
) -> Manifest | None:
    installed = agent.installed_version()
    releases = statement.get("releases")
    if not isinstance(releases, dict):
        raise VerificationError("the bundle's statement lists no releases")
    for version in sorted(releases, key=lambda v: version_of(v, "bundle release"), reverse=True):
        name = f"manifests/{version}.json"
        if name not in members:
            raise VerificationError(f"the bundle lacks the manifest of {version}")
        manifest = verify_manifest(
            _json(_read(tar, members[name], agent.config.max_document_bytes), name),
            root,
            product=agent.config.product,
            platform=agent.config.platform,
            installed=None,
        )
        check_manifest_channel(manifest, agent.config.channel)
        if (
            str(manifest.version) != version
            or releases[version].get("sha256") != manifest.artifact.sha256
        ):
            raise VerificationError(
                f"the bundle's statement and the manifest of {version} disagree"
            )
        if installed is not None and manifest.version <= installed and not allow_downgrade:
            continue
        min_from = manifest.document["signed"].get("min_from")
        if min_from and installed is not None and installed < Version(str(min_from)):
            continue  # needs a stepping stone first; a lower release in the bundle may be it
        if f"artifacts/{manifest.artifact.sha256}" not in members:
            raise VerificationError(f"the bundle lacks the artifact of {version}")
        return manifest
    return None
