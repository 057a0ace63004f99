"""The pure verifier, part two: release manifests, check answers, patches and artifacts.

Bytes and trusted keys in, a verified result or an exception out. No network, no disk, no
clock: ``now`` is a parameter. Signatures are checked against the trusted root (roots.py) by
the role each document needs: ``release`` for manifests and patches documents, ``check`` for
check answers. This is the agent's own implementation of docs/protocol.md (it never imports
the server), so the two sides check each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.version import InvalidVersion, Version

from client_agent.delta import PATCH_FORMATS, VIGOR1
from client_agent.errors import (
    ArtifactError,
    DowngradeError,
    ReplayError,
    VerificationError,
    WrongTargetError,
)
from client_agent.roots import TrustedRoot, check_clock_against, parse_time, verify_role

__all__ = [
    "CLOCK_SKEW",
    "Artifact",
    "CheckAnswer",
    "Manifest",
    "PatchOffer",
    "check_artifact",
    "check_manifest_channel",
    "compare_echoes",
    "license_fingerprint",
    "verify_check",
    "verify_manifest",
    "verify_patch",
    "version_of",
]

# Clocks differ by minutes: a check answer is stale only past that (its nonce proves freshness).
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Artifact:
    """The file of a release for one platform, as its signed manifest describes it."""

    platform: str
    filename: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A verified release manifest and the artifact for this platform."""

    product: str
    version: Version
    kind: str
    severity: str | None
    published_at: datetime
    artifact: Artifact
    document: Mapping[str, Any]
    channel: str


def version_of(text: Any, what: str) -> Version:
    """``text`` as a version; ``what`` names it in the error.

    Raises:
        VerificationError: ``text`` is not a version.
    """
    try:
        return Version(str(text))
    except InvalidVersion:
        raise VerificationError(f"{what} {text!r} is not a version") from None


def verify_manifest(
    document: Any,
    root: TrustedRoot,
    *,
    product: str,
    platform: str,
    installed: Version | None,
    allow_downgrade: bool = False,
) -> Manifest:
    """A release manifest that is signed, for this product and platform, and newer than installed.

    Raises:
        SignatureError: not signed by the threshold of the ``release`` role.
        WrongTargetError: for another product, no artifact for this platform (nor ``any``), or
            its ``min_from`` is above the installed version.
        DowngradeError: not newer than ``installed`` (unless ``allow_downgrade``).
        VerificationError: not a release document, or malformed (artifacts, channel, version,
            time).
    """
    signed = verify_role(document, root, "release", "release")
    if signed.get("product") != product:
        raise WrongTargetError(f"the manifest is for {signed.get('product')!r}, not {product!r}")
    artifacts = signed.get("artifacts")
    if not isinstance(artifacts, Mapping):
        raise VerificationError("the manifest lists no artifacts")
    chosen = platform if platform in artifacts else "any" if "any" in artifacts else None
    if chosen is None:
        raise WrongTargetError(f"the manifest has no artifact for {platform}")
    spec = artifacts[chosen]
    try:
        artifact = Artifact(
            chosen, str(spec.get("filename", "")), int(spec["size"]), str(spec["sha256"])
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VerificationError("the manifest's artifact entry is malformed") from None
    if artifact.size < 0 or len(artifact.sha256) != 64:
        raise VerificationError("the manifest's artifact size or hash is malformed")
    channel = signed.get("channel")
    if not isinstance(channel, str):
        raise VerificationError("the manifest names no channel")
    version = version_of(signed.get("version"), "manifest version")
    if installed is not None and version <= installed and not allow_downgrade:
        raise DowngradeError(f"refusing {version}: it is not newer than the installed {installed}")
    min_from = signed.get("min_from")
    if installed is not None and min_from and installed < version_of(min_from, "min_from"):
        raise WrongTargetError(
            f"{version} can only be installed over {min_from} or later, not {installed}"
        )
    return Manifest(
        product=product,
        version=version,
        kind=str(signed.get("kind", "")),
        severity=signed.get("severity") if isinstance(signed.get("severity"), str) else None,
        published_at=parse_time(signed.get("published_at"), "publication time"),
        artifact=artifact,
        document=document,
        channel=channel,
    )


@dataclass(frozen=True)
class CheckAnswer:
    """A verified check response."""

    signed: Mapping[str, Any]
    manifest: Manifest | None
    download_url: str | None
    apply_by: datetime | None
    issued_at: datetime
    patch: PatchOffer | None = None

    @property
    def entitlement(self) -> Mapping[str, Any]:
        """The signed entitlement (maintenance status, dates, message)."""
        value = self.signed.get("entitlement")
        return value if isinstance(value, Mapping) else {}

    @property
    def renewal(self) -> Mapping[str, Any] | None:
        """What renewal would bring, when the customer is missing releases."""
        value = self.signed.get("renewal")
        return value if isinstance(value, Mapping) else None

    @property
    def notices(self) -> Sequence[Mapping[str, Any]]:
        """End-of-life and yanked notices."""
        value = self.signed.get("notices")
        return [n for n in value if isinstance(n, Mapping)] if isinstance(value, list) else []


def verify_check(
    document: Any,
    root: TrustedRoot,
    *,
    nonce: str,
    installation_id: str,
    product: str,
    platform: str,
    installed: Version | None,
    now: datetime,
    channel: str,
    sent_version: str,
    license_key: str,
    allow_downgrade: bool = False,
) -> CheckAnswer:
    """A check response that answers *this* request, signed by the check role.

    Everything the request said is compared with what the answer echoes (:func:`compare_echoes`),
    and the offered manifest must be on ``channel`` or ``stable``: an answer obtained by
    rewriting the request on the way (another version, channel or license) is refused.

    A patch offered with the update that does not verify is ignored (``patch`` is None; the
    full artifact is still offered).

    Raises:
        SignatureError: the answer is not signed by the threshold of the ``check`` role, or its
            manifest by that of the ``release`` role.
        ReplayError: it does not echo ``nonce`` or ``installation_id``, or it has expired.
        WrongTargetError: it echoes another product, platform, channel, installed version or
            license; the manifest is for another product, platform or channel, or cannot be
            installed over ``installed`` (``min_from``).
        ExpiredRootError: the server's signed issue time is past the root's expiry.
        DowngradeError: the offered version is not newer than ``installed``.
        VerificationError: not a check document, or malformed (times, the offer, a version that
            is not its manifest's, no download URL).
    """
    signed = verify_role(document, root, "check", "check")
    compare_echoes(
        signed,
        nonce=nonce,
        installation_id=installation_id,
        product=product,
        platform=platform,
        channel=channel,
        sent_version=sent_version,
        license_key=license_key,
    )
    issued = parse_time(signed.get("issued_at"), "check issue time")
    check_clock_against(root, issued, now)
    expires = parse_time(signed.get("expires_at"), "check expiry")
    if expires + CLOCK_SKEW < now:
        hint = ""
        if (now - expires).days >= 1:
            hint = f" — or this machine's clock ({now:%Y-%m-%d %H:%M} UTC) is ahead: check it"
        raise ReplayError(f"the check response expired at {expires:%Y-%m-%d %H:%M} UTC{hint}")
    update = signed.get("update")
    if update is None:
        return CheckAnswer(signed, None, None, None, issued)
    if not isinstance(update, Mapping):
        raise VerificationError("the offered update is malformed")
    manifest = verify_manifest(
        update.get("manifest"),
        root,
        product=product,
        platform=platform,
        installed=installed,
        allow_downgrade=allow_downgrade,
    )
    check_manifest_channel(manifest, channel)
    if update.get("version", str(manifest.version)) != str(manifest.version):
        raise VerificationError(
            f"the offer names {update.get('version')!r} but its manifest is {manifest.version}"
        )
    download = update.get("download")
    url = download.get("url") if isinstance(download, Mapping) else None
    if not isinstance(url, str):
        raise VerificationError("the offered update has no download URL")
    apply_by = update.get("apply_by")
    try:
        patch = verify_patch(update, root, manifest)
    except VerificationError:
        patch = None  # a patch that does not verify is ignored: the full artifact still is
    return CheckAnswer(
        signed,
        manifest,
        url,
        parse_time(apply_by, "apply-by time") if apply_by else None,
        issued,
        patch,
    )


def license_fingerprint(license_key: str) -> str:
    """What a check answer names the license by: the lowercase hex SHA-256 of its key."""
    return hashlib.sha256(license_key.encode()).hexdigest()


def compare_echoes(
    signed: Mapping[str, Any],
    *,
    nonce: str,
    installation_id: str,
    product: str,
    platform: str,
    channel: str,
    sent_version: str,
    license_key: str,
) -> None:
    """Refuse a check answer that does not echo, field by field, the request the agent sent.

    The server signs what it was asked; a network attacker who rewrites the request (another
    version to freeze the agent, another channel to steer it, another customer's license to
    get another view) gets a valid signature over *their* request, which this catches.
    ``sent_version`` is the version text the request carried (``"0"`` when nothing is installed).

    Raises:
        ReplayError: another nonce or installation id.
        WrongTargetError: another product, platform, channel, installed version or license.
    """
    if signed.get("nonce") != nonce:
        raise ReplayError("the check response does not echo this request's nonce (a replay?)")
    if signed.get("installation_id") != installation_id:
        raise ReplayError("the check response is for another installation")
    expected = (
        ("product", "product", product),
        ("platform", "platform", platform),
        ("channel", "channel", channel),
        ("installed_version", "installed version", sent_version),
    )
    for field_name, label, want in expected:
        got = signed.get(field_name)
        if got != want:
            raise WrongTargetError(
                f"the update server's answer is for {label} {got!r}, not {want!r} (refused)"
            )
    if signed.get("license_fingerprint") != license_fingerprint(license_key):
        raise WrongTargetError(
            "the update server's answer is for another license, not the configured one "
            "(license_fingerprint; refused)"
        )


def check_manifest_channel(manifest: Manifest, channel: str) -> None:
    """An installation on channel C takes C's releases and stable ones, never another's.

    Raises:
        WrongTargetError: the manifest is for another channel.
    """
    got = manifest.channel
    if got not in (channel, "stable"):
        raise WrongTargetError(
            f"the offered release is for channel {got!r}, not {channel!r} (refused; the channel "
            "changes only in the configuration)"
        )


@dataclass(frozen=True)
class PatchOffer:
    """A verified offer of a delta from the installed content to the offered release's content."""

    url: str
    size: int
    sha256: str
    from_version: str
    from_content_sha256: str
    content_sha256: str
    content_size: int
    format: str = "vigor1"  # how it is written (the patches document says; absent: vigor1)


def verify_patch(
    update: Mapping[str, Any],
    root: TrustedRoot,
    manifest: Manifest,
    formats: Sequence[str] = PATCH_FORMATS,
) -> PatchOffer | None:
    """The patch offered with ``update``, checked against its signed patches document (or None).

    Raises:
        SignatureError: the patches document is not signed by the threshold of ``release``.
        VerificationError: the offer or the document is malformed, is for another release (its
            product, version, or the artifact its content stands for: the manifest's SHA-256),
            lists no patch from the offered version, or disagrees with the download offered;
            or the patch is in a format not in ``formats`` (what this agent reads).
    """
    offer = update.get("patch")
    if offer is None:
        return None
    if not isinstance(offer, Mapping):
        raise VerificationError("the offered patch is malformed")
    signed = verify_role(offer.get("document"), root, "release", "patches")
    if signed.get("product") != manifest.product or signed.get("version") != str(manifest.version):
        raise VerificationError("the patches document is for another release")
    artifacts = signed.get("artifacts")
    entry = artifacts.get(manifest.artifact.platform) if isinstance(artifacts, Mapping) else None
    download = offer.get("download")
    from_version = offer.get("from_version")
    if (
        not isinstance(entry, Mapping)
        or not isinstance(download, Mapping)
        or not isinstance(from_version, str)
    ):
        raise VerificationError("the offered patch is malformed")
    if entry.get("artifact_sha256") != manifest.artifact.sha256:
        raise VerificationError(
            "the patches document rebuilds another artifact than the manifest's"
        )
    patches = entry.get("patches")
    described = patches.get(from_version) if isinstance(patches, Mapping) else None
    if not isinstance(described, Mapping):
        raise VerificationError(f"the patches document lists no patch from {from_version}")
    try:
        result = PatchOffer(
            url=str(download["url"]),
            size=int(described["size"]),
            sha256=str(described["sha256"]),
            from_version=from_version,
            from_content_sha256=str(described["from_content_sha256"]),
            content_sha256=str(entry["content_sha256"]),
            content_size=int(entry["content_size"]),
            format=str(described.get("format", VIGOR1)),
        )
    except (KeyError, TypeError, ValueError):
        raise VerificationError("the patches document is malformed") from None
    if download.get("sha256") != result.sha256 or download.get("size") != result.size:
        raise VerificationError("the patch download does not match the signed patches document")
    if result.format not in formats:
        raise VerificationError(
            f"the patch is in a format this agent cannot read ({result.format})"
        )
    return result


def check_artifact(length: int, sha256: str, artifact: Artifact) -> None:
    """Refuse bytes whose length or SHA-256 is not what the signed manifest says.

    Length first: it is the cheaper fact, and it tells a truncated download from a tampered one.

    Raises:
        ArtifactError: the length or the SHA-256 differs from the manifest's.
    """
    if length != artifact.size:
        raise ArtifactError(
            f"the download is {length} bytes, the manifest says {artifact.size}; refusing"
        )
    if sha256 != artifact.sha256:
        raise ArtifactError(
            f"the download's SHA-256 {sha256[:16]}… does not match the manifest's "
            f"{artifact.sha256[:16]}…; refusing"
        )
