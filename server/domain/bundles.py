"""Offline bundles: everything one license may install, in one file, verifiable with no network.

A bundle is an uncompressed tar (artifacts are compressed already)::

    root/<n>.json           the whole root chain, so an agent pinned to root 1 can walk it
    manifests/<version>.json   each release's signed manifest, unchanged
    artifacts/<sha256>      each artifact's bytes
    bundle.json             last; canonical JSON signed by the check role: type "bundle", the
                            license it is for (the SHA-256 of its key, as stored), customer,
                            product, channel, platform, the entitlement (status, maintenance end,
                            cutoff), issued_at, valid_until, the releases it carries, and
                            ``content`` — the SHA-256 and length of every byte before its header

So a change to any byte is caught: before the statement by ``content``, in its header by the tar
checksum, in it by the signature (the agent requires canonical bytes), after it because only
zeros may follow.

The agent verifies it exactly as online: root chain, bundle signature and license binding,
manifests by the release role, artifacts by size and SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import entitlements as ent
from server.domain import messages, offers
from server.domain.catalog import Catalog, artifact_for
from server.domain.checks import entitlement_json
from server.domain.coverage import maintenance_status
from server.domain.errors import InvalidInputError
from server.domain.facts import ContractFacts, LicenseFacts
from server.domain.models import License, TrustRoot
from server.domain.renewal_links import renewal_link
from server.domain.trust import Signer, iso, sign_document
from server.domain.vocabulary import ANY_PLATFORM, PLATFORMS, LicenseStatus, LineStatus
from server.storage.base import CHUNK_SIZE, ArtifactStore

BUNDLE_LIFETIME = timedelta(days=90)


@dataclass(frozen=True)
class BundlePlan:
    """What a bundle will hold, decided before any byte is written."""

    statement: dict[str, Any]
    manifests: dict[str, Any]  # version -> signed manifest
    artifacts: dict[str, tuple[str, int]]  # version -> (sha256, size)


def offered_platforms(catalog: Catalog) -> list[str]:
    """The platforms a bundle can be made for: those ``catalog``'s releases have artifacts for,
    or every platform name when some artifact runs on any platform."""
    named = {p for r in catalog.index.newest_first for p in r.platforms}
    if ANY_PLATFORM in named:
        named |= set(PLATFORMS)
    return sorted(named)


def plan_bundle(
    lic: License,
    catalog: Catalog,
    *,
    since: Version | None,
    platform: str,
    channel: str,
    now: datetime,
) -> BundlePlan:
    """The entitled releases newer than ``since`` for ``platform``, and the signed statement.

    Raises:
        InvalidInputError: ``platform`` is not one of :func:`offered_platforms` (it names the
            bundle's file), or the license is not active.
    """
    if platform not in offered_platforms(catalog):
        raise InvalidInputError(
            "platform",
            f"{platform[:40]!r} is not a platform of this product; one of: "
            f"{', '.join(offered_platforms(catalog))}",
        )
    facts = LicenseFacts(
        lic.status,
        lic.product.slug,
        lic.customer.slug,
        tuple(
            ContractFacts(c.kind, c.product.slug if c.product else None, c.starts_on, c.ends_on)
            for c in lic.customer.contracts
        ),
    )
    if lic.status != LicenseStatus.ACTIVE:
        raise InvalidInputError(
            "license", f"this license is {lic.status}; no bundle can be made for it"
        )
    status = maintenance_status(facts, catalog.policy, now)
    owned = ent.owned_lines(facts, catalog.policy, catalog.index.newest_first, status)
    manifests: dict[str, Any] = {}
    artifacts: dict[str, tuple[str, int]] = {}
    for release in catalog.index.newest_first:
        if since is not None and release.version <= since:
            continue
        if not offers.on_channel(release, channel) or release.line_status == LineStatus.END_OF_LIFE:
            continue  # the same lines an online check would offer from
        decision = ent.decide(facts, catalog.policy, release, now, owned_lines=owned, status=status)
        artifact = artifact_for(catalog, release.id, platform)
        if not decision.offerable or artifact is None:
            continue
        manifests[str(release.version)] = catalog.manifests[release.id]
        artifacts[str(release.version)] = (artifact.sha256, artifact.size)
    statement = {
        "type": "bundle",
        "license": lic.key_hash,
        "customer": lic.customer.slug,
        "product": lic.product.slug,
        "channel": channel,
        "platform": platform,
        "since": str(since) if since else None,
        "entitlement": entitlement_json(
            status,
            catalog.policy,
            messages.negotiate(lic.customer.language),
            renewal_url=renewal_link(
                catalog.policy.renewal_url,
                customer=lic.customer.slug,
                license_id=lic.id,
                product=lic.product.slug,
                ends_on=status.maintenance_ends_on,
            ),
        ),
        "issued_at": iso(now),
        "valid_until": iso(now + BUNDLE_LIFETIME),
        "releases": {
            version: {"sha256": sha, "size": size} for version, (sha, size) in artifacts.items()
        },
    }
    return BundlePlan(statement, manifests, artifacts)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _digest_prefix(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        left = length
        while left:
            chunk = handle.read(min(CHUNK_SIZE, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def write_bundle(
    session: Session, store: ArtifactStore, signer: Signer, plan: BundlePlan, out: Path
) -> int:
    """Write the bundle to ``out`` (atomically); returns its size in bytes."""
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with (
            tmp.open("wb") as raw,
            tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for row in session.scalars(select(TrustRoot).order_by(TrustRoot.version)):
                _add(tar, f"root/{row.version}.json", row.document.encode())
            for version, manifest in plan.manifests.items():
                _add(tar, f"manifests/{version}.json", json.dumps(manifest).encode())
            for sha, size in sorted(set(plan.artifacts.values())):
                info = tarfile.TarInfo(f"artifacts/{sha}")
                info.size = size
                info.mode = 0o644
                with store.open(sha) as source:
                    tar.addfile(info, _Exactly(source, size))
            raw.flush()
            length = tar.offset  # where the statement's header starts
            content = {"sha256": _digest_prefix(tmp, length), "length": length}
            statement = {**plan.statement, "content": content}
            _add(tar, "bundle.json", canonical_json(sign_document(statement, [signer])))
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out.stat().st_size


class _Exactly:
    """A reader of exactly ``size`` bytes from a stored blob, in bounded chunks."""

    def __init__(self, source: IO[bytes], size: int) -> None:
        self.source = source
        self.left = size

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        data = self.source.read(min(want, CHUNK_SIZE)) if want else b""
        self.left -= len(data)
        return data
