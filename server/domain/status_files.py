"""Importing the status file an offline installation signed with its own key."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError
from server.domain.models import ApplyReport, Installation, License
from server.domain.releases import find_release
from server.domain.trust import canonical_bytes, parse_iso
from server.domain.vocabulary import DEFAULT_CHANNEL, ApplyOutcome, values


@dataclass(frozen=True)
class StatusImport:
    installation_id: str
    installed_version: str | None
    reports: int
    first_seen: bool


def _verified(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, Mapping) or not isinstance(document.get("signed"), Mapping):
        raise InvalidInputError("file", "not a Vigor status file")
    signed: Mapping[str, Any] = document["signed"]
    if signed.get("type") != "status" or not isinstance(signed.get("public"), str):
        raise InvalidInputError("file", "not a Vigor status file")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(signed["public"]))
        (entry,) = document["signatures"]
        key.verify(bytes.fromhex(entry["sig"]), canonical_bytes(signed))
    except (ValueError, TypeError, KeyError, InvalidSignature):
        raise InvalidInputError("file", "the status file's signature does not verify") from None
    return signed


def import_status(session: Session, document: Any, *, actor: str) -> StatusImport:
    """Record what an offline installation reports, if signed by its pinned key."""
    signed = _verified(document)
    lic = session.scalar(select(License).where(License.key_hash == signed.get("license")))
    if lic is None:
        raise NotFoundError("the status file names a license this server does not know")
    if signed.get("product") != lic.product.slug:
        raise InvalidInputError("file", "the status file's product does not match its license")
    uid = str(signed.get("installation_id", ""))
    exported = parse_iso(str(signed.get("exported_at")))
    keyid = hashlib.sha256(bytes.fromhex(signed["public"])).hexdigest()
    inst = session.scalar(
        select(Installation).where(Installation.license_id == lic.id, Installation.uid == uid)
    )
    first = inst is None
    if inst is None:
        inst = Installation(
            license_id=lic.id,
            uid=uid,
            version=str(signed.get("installed_version") or "0"),
            platform=str(signed.get("platform", "")),
            channel=str(signed.get("channel", DEFAULT_CHANNEL)),
            first_seen=exported,
            last_seen=exported,
        )
        session.add(inst)
    elif inst.status_key is not None and inst.status_key != keyid:
        raise ConflictError(
            f"installation {uid} signs its status with another key; refusing this file"
        )
    if inst.status_exported_at is not None and exported <= inst.status_exported_at:
        raise ConflictError(
            "this status file is not newer than the last one imported for the installation"
        )
    inst.status_key = keyid
    inst.status_exported_at = exported
    if signed.get("installed_version"):
        inst.version = str(signed["installed_version"])
    inst.last_seen = max(inst.last_seen, exported)
    recorded = 0
    for report in signed.get("reports") or []:
        if not isinstance(report, Mapping) or report.get("outcome") not in values(ApplyOutcome):
            continue
        try:
            release = find_release(session, lic.product.slug, str(report.get("version")))
        except (NotFoundError, InvalidInputError):
            continue
        session.add(
            ApplyReport(
                at=exported,
                license_id=lic.id,
                installation_uid=uid,
                release_id=release.id,
                from_version=report.get("from_version"),
                outcome=ApplyOutcome(report["outcome"]),
                code=report.get("code"),
                message=report.get("message"),
            )
        )
        recorded += 1
    audit.record(
        session, actor, "installation.status_import", uid, version=inst.version, reports=recorded
    )
    session.commit()
    return StatusImport(uid, signed.get("installed_version"), recorded, first)
