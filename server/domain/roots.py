"""The root chain in the database: every accepted root version, each verified by its parent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.domain.models import TrustRoot, utcnow
from server.domain.trust import (
    Root,
    Signer,
    TrustError,
    build_root,
    parse_root,
    sign_document,
    verify_root,
)

DEFAULT_ROOT_LIFETIME = timedelta(days=365)

ROOT_WARNING_DAYS = 30
"""A root of trust expiring within this many days is warned about (``/healthz``, ``vigor keys
status``): agents refuse an expired root, so a new one must be written and shipped before."""


def newest_version(session: Session) -> int:
    return session.scalar(select(func.max(TrustRoot.version))) or 0


def root_document(session: Session, version: int | None = None) -> dict[str, Any] | None:
    """The signed root of ``version`` (the newest when None), or None."""
    version = newest_version(session) if version is None else version
    row = session.get(TrustRoot, version)
    return json.loads(row.document) if row else None


def current_root(session: Session) -> Root:
    document = root_document(session)
    if document is None:
        raise TrustError("no root of trust yet: run `vigor init`")
    return parse_root(document)


def store_root(session: Session, document: dict[str, Any]) -> Root:
    """Verify ``document`` against the newest stored root and append it to the chain."""
    previous = root_document(session)
    trusted = verify_root(previous, None) if previous else None
    root = verify_root(document, trusted)
    session.add(TrustRoot(version=root.version, document=json.dumps(document, sort_keys=True)))
    session.flush()
    return root


def write_next_root(
    session: Session,
    *,
    old_root_signers: list[Signer],
    new_root_signers: list[Signer] | None = None,
    release_keys: list[str],
    check_keys: list[str],
    root_threshold: int = 1,
    expires: datetime | None = None,
) -> Root:
    """Build, sign and store root N+1.

    ``old_root_signers`` must meet root N's threshold (for version 1 they are the new root keys).
    ``new_root_signers`` become root N+1's root role; when None the root role keeps its keys and
    the old signers sign for both. The ``release`` and ``check`` roles must name different keys
    (DESIGN.md, "Online keys by role"): a leaked check key must not sign a release.
    """
    shared = set(release_keys) & set(check_keys)
    if shared:
        raise TrustError(
            "the release and check roles must have different keys; "
            f"{len(shared)} key(s) named for both (run `vigor keys separate-roles`)"
        )
    previous = newest_version(session)
    new_signers = new_root_signers if new_root_signers is not None else old_root_signers
    if previous:
        current = current_root(session)
        if new_root_signers is None:
            root_publics = [current.keys[k] for k in current.role("root").keyids]
        else:
            root_publics = [s.public for s in new_signers]
    else:
        root_publics = [s.public for s in new_signers]
    signed = build_root(
        version=previous + 1,
        expires=expires or utcnow() + DEFAULT_ROOT_LIFETIME,
        root_keys=root_publics,
        release_keys=release_keys,
        check_keys=check_keys,
        root_threshold=root_threshold,
    )
    signers: dict[str, Signer] = {s.keyid: s for s in [*old_root_signers, *new_signers]}
    return store_root(session, sign_document(signed, signers.values()))
