"""Setting up and changing the root of trust; checking what is stored against what was signed."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from server.domain import roots
from server.domain.models import Release, utcnow
from server.domain.trust import Root, Signer, TrustError, sign_document, verify_role
from server.keyring import create_key_file, load_key_file
from server.services import Services
from server.storage.base import CHUNK_SIZE, StorageError


def ensure_trust(
    services: Services, root_key_path: Path | None = None, passphrase: str | None = None
) -> Path | None:
    """Create root version 1 and two online keys, one for the ``release`` role and one for the
    ``check`` role, if the instance has no root yet.

    Returns the path of the root key file when one was created or used, else None.
    """
    with services.db.session() as session:
        if roots.newest_version(session):
            return None
        path = root_key_path or services.settings.keys_dir / "root.pem"
        root_signer = (
            load_key_file(path, passphrase) if path.exists() else create_key_file(path, passphrase)
        )
        # Online keys left from an earlier attempt are reused rather than piled up.
        available = services.keyring.available()[:2]
        online = [services.keyring.load(kid) for kid in available]
        online += [services.keyring.create() for _ in range(2 - len(online))]
        roots.write_next_root(
            session,
            old_root_signers=[root_signer],
            release_keys=[online[0].public],
            check_keys=[online[1].public],
        )
    services.forget_root()
    return path


def _publics(root: Root, keyids: list[str], services: Services) -> list[str]:
    out = []
    for kid in keyids:
        if kid in root.keys:
            out.append(root.keys[kid])
        else:
            out.append(services.keyring.load(kid).public)
    return out


def write_root(
    services: Services,
    *,
    old_signers: list[Signer],
    new_signers: list[Signer] | None = None,
    release_keys: list[str] | None = None,
    check_keys: list[str] | None = None,
    threshold: int = 1,
    expires_days: int = 365,
) -> Root:
    """Write root N+1; each online role defaults to the current root's keys for it (key ids).

    Raises:
        TrustError: the two online roles would share a key (see :func:`separate_roles`).
    """
    with services.db.session() as session:
        current = roots.current_root(session)
        release_ids = release_keys or list(current.role("release").keyids)
        check_ids = check_keys or list(current.role("check").keyids)
        root = roots.write_next_root(
            session,
            old_root_signers=old_signers,
            new_root_signers=new_signers,
            release_keys=_publics(current, release_ids, services),
            check_keys=_publics(current, check_ids, services),
            root_threshold=threshold,
            expires=utcnow() + timedelta(days=expires_days),
        )
    services.forget_root()
    return root


def separate_roles(services: Services, root_signers: list[Signer]) -> Root:
    """Give the ``check`` role a key of its own, for an instance whose root names one online key
    for both roles (as ``vigor init`` did before): root N+1 keeps the release keys and names a new
    check key. Nothing is re-signed: manifests and patches documents stay with the release role.

    Raises:
        TrustError: the roles already have different keys.
    """
    current = services.root()
    if not current.shared_online_keys():
        raise TrustError(
            f"root version {current.version} already names different keys for release and check"
        )
    check = services.keyring.create()
    try:
        return write_root(
            services,
            old_signers=root_signers,
            release_keys=list(current.role("release").keyids),
            check_keys=[check.keyid],
            threshold=current.role("root").threshold,
        )
    except TrustError:
        services.keyring.path_for(check.keyid).unlink()  # no root names it: leave nothing
        raise


def rotate_online_key(services: Services, root_signers: list[Signer]) -> tuple[Root, int]:
    """New online keys for the release and the check role; every published manifest and patches
    document is re-signed by the new release key.

    Their signed content never changes; only the signature over it is replaced, so agents that
    trust the new root verify old releases (and their patches) too.
    """
    release_key, check_key = services.keyring.create(), services.keyring.create()
    try:
        root = write_root(
            services,
            old_signers=root_signers,
            release_keys=[release_key.keyid],
            check_keys=[check_key.keyid],
            threshold=services.root().role("root").threshold,
        )
    except TrustError:
        for key in (release_key, check_key):  # no root names them: leave nothing
            services.keyring.path_for(key.keyid).unlink()
        raise
    count = 0
    with services.db.session() as session:
        for release in session.scalars(select(Release).where(Release.manifest.is_not(None))):
            assert release.manifest is not None
            document = json.loads(release.manifest)
            resigned = sign_document(document["signed"], [release_key])
            release.manifest = json.dumps(resigned, sort_keys=True)
            release.manifest_keyid = release_key.keyid
            if release.patch_manifest:
                patches = json.loads(release.patch_manifest)
                release.patch_manifest = json.dumps(sign_document(patches["signed"], [release_key]))
            count += 1
        for release in session.scalars(select(Release).where(Release.manifest.is_not(None))):
            release.product.catalog_changed()
    return root, count


def verify_release(services: Services, release: Release) -> list[str]:
    """Problems found re-checking a release: its manifest signature and every artifact's bytes."""
    problems: list[str] = []
    now = utcnow()
    if release.manifest:
        try:
            verify_role(json.loads(release.manifest), services.root(), "release", "release", now)
        except TrustError as exc:
            problems.append(f"manifest: {exc}")
    if release.patch_manifest:
        try:
            patches = json.loads(release.patch_manifest)
            verify_role(patches, services.root(), "release", "patches", now)
            signed = patches["signed"]
            if (signed.get("product"), signed.get("version")) != (
                release.product.slug,
                release.version,
            ):
                raise TrustError("it is for another release")
        except TrustError as exc:
            problems.append(f"patches document: {exc}")
    for artifact in release.artifacts:
        digest = hashlib.sha256()
        size = 0
        try:
            with services.store.open(artifact.sha256) as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
        except StorageError as exc:
            problems.append(f"{artifact.platform}: {exc}")
            continue
        if size != artifact.size or digest.hexdigest() != artifact.sha256:
            problems.append(
                f"{artifact.platform}: stored bytes do not match the recorded SHA-256 "
                f"(got {digest.hexdigest()}, {size} bytes)"
            )
    return problems
