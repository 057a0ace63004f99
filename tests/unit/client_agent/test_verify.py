"""The pure verifier on its own: a named table of refusals, and what it must accept.

Documents are made by tests/common/agent_sim.py, an implementation of the protocol that shares
no code with the agent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from packaging.version import Version

from client_agent.errors import (
    ArtifactError,
    DowngradeError,
    ExpiredRootError,
    ReplayError,
    SignatureError,
    VerificationError,
    WrongTargetError,
)
from client_agent.roots import TrustedRoot, check_root_fresh, trust_initial_root, verify_next_root
from client_agent.verify import check_artifact, verify_check, verify_manifest
from tests.common.agent_sim import Key, iso, root_signed, sign

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
FAR = NOW + timedelta(days=365)
ROOT, RELEASE, CHECK = Key(), Key(), Key()
ROOT_1 = sign(root_signed(1, FAR, [ROOT], [RELEASE], [CHECK]), [ROOT])
ARTIFACT = b"the artifact"


def trusted() -> TrustedRoot:
    return trust_initial_root(ROOT_1)


def manifest_signed(**changes: Any) -> dict[str, Any]:
    signed = {
        "type": "release",
        "product": "acme-erp",
        "version": "1.1.0",
        "kind": "update",
        "severity": None,
        "published_at": iso(NOW - timedelta(days=1)),
        "min_from": None,
        "artifacts": {
            "linux-x86_64": {
                "filename": "a.tar.gz",
                "size": len(ARTIFACT),
                "sha256": hashlib.sha256(ARTIFACT).hexdigest(),
            }
        },
    }
    return {**signed, **changes}


def check_signed(manifest: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    signed = {
        "type": "check",
        "nonce": "ab" * 16,
        "installation_id": "inst-0123456789abcdef",
        "product": "acme-erp",
        "platform": "linux-x86_64",
        "issued_at": iso(NOW),
        "expires_at": iso(NOW + timedelta(hours=1)),
        "entitlement": {"status": "active"},
        "update": {
            "version": "1.1.0",
            "manifest": manifest or sign(manifest_signed(), [RELEASE]),
            "download": {"url": "https://updates.example/d/1"},
            "apply_by": None,
        },
    }
    return {**signed, **changes}


def offer(**changes: Any) -> dict[str, Any]:
    """A check whose offered update has ``changes``."""
    signed = check_signed()
    signed["update"] = {**signed["update"], **changes}
    return sign(signed, [CHECK])


def run_check(document: Any, root: TrustedRoot | None = None, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "nonce": "ab" * 16,
        "installation_id": "inst-0123456789abcdef",
        "product": "acme-erp",
        "platform": "linux-x86_64",
        "installed": Version("1.0.0"),
        "now": NOW,
        **options,
    }
    return verify_check(document, root or trusted(), **arguments)


def run_manifest(document: Any, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "product": "acme-erp",
        "platform": "linux-x86_64",
        "installed": Version("1.0.0"),
        **options,
    }
    return verify_manifest(document, trusted(), **arguments)


def next_root(signers: list[Key], root_keys: list[Key], version: int = 2, **kw: Any) -> Any:
    return sign(root_signed(version, FAR, root_keys, [RELEASE], [CHECK], **kw), signers)


NEW_ROOT = Key()
TWO_OF_TWO = [Key(), Key()]
ROOT_TWO_OF_TWO = trust_initial_root(
    sign(root_signed(1, FAR, TWO_OF_TWO, [RELEASE], [CHECK], root_threshold=2), TWO_OF_TWO)
)


def twice(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "signatures": document["signatures"] * 2}


def bad_keyid_root() -> dict[str, Any]:
    signed = root_signed(1, FAR, [ROOT], [RELEASE], [CHECK])
    keyid, spec = next(iter(signed["keys"].items()))
    signed["keys"] = {("f" * 64): spec, **{k: v for k, v in signed["keys"].items() if k != keyid}}
    return sign(signed, [ROOT])


REFUSALS: dict[str, tuple[Callable[[], Any], type[Exception], str]] = {
    # --- roots
    "shipped-root-unsigned": (
        lambda: trust_initial_root(sign(root_signed(1, FAR, [ROOT], [RELEASE], [CHECK]), [])),
        SignatureError,
        "not signed by its own root keys",
    ),
    "key-id-not-the-hash-of-the-key": (
        lambda: trust_initial_root(bad_keyid_root()),
        VerificationError,
        "does not match its id",
    ),
    "impossible-threshold": (
        lambda: trust_initial_root(
            sign(root_signed(1, FAR, [ROOT], [RELEASE], [CHECK], root_threshold=2), [ROOT])
        ),
        VerificationError,
        "impossible threshold",
    ),
    "threshold-not-an-integer": (
        lambda: trust_initial_root(
            sign(root_signed(1, FAR, [ROOT], [RELEASE], [CHECK], root_threshold=True), [ROOT])  # type: ignore[arg-type]
        ),
        VerificationError,
        "must be an integer",
    ),
    "next-root-skips-a-version": (
        lambda: verify_next_root(trusted(), next_root([ROOT], [ROOT], version=3)),
        VerificationError,
        "expected root version 2",
    ),
    "next-root-not-signed-by-the-old-root": (
        lambda: verify_next_root(trusted(), next_root([NEW_ROOT], [NEW_ROOT])),
        SignatureError,
        "not signed by the keys of root 1",
    ),
    "next-root-not-signed-by-its-own-keys": (
        lambda: verify_next_root(trusted(), next_root([ROOT], [NEW_ROOT])),
        SignatureError,
        "not signed by its own root keys",
    ),
    "one-of-two-root-signatures": (
        lambda: verify_next_root(ROOT_TWO_OF_TWO, next_root(TWO_OF_TWO[:1], TWO_OF_TWO[:1])),
        SignatureError,
        "not signed by the keys of root 1",
    ),
    "duplicate-signatures-count-once": (
        lambda: verify_next_root(ROOT_TWO_OF_TWO, twice(next_root(TWO_OF_TWO[:1], TWO_OF_TWO[:1]))),
        SignatureError,
        "not signed by the keys of root 1",
    ),
    # --- check responses
    "check-of-another-type": (
        lambda: run_check(sign(manifest_signed(), [CHECK])),
        VerificationError,
        "not a signed 'check' document",
    ),
    "check-signed-by-the-release-key": (
        lambda: run_check(sign(check_signed(), [RELEASE])),
        SignatureError,
        "not signed by the keys root names for 'check'",
    ),
    "check-signature-over-other-bytes": (
        lambda: run_check(
            {**sign(check_signed(), [CHECK]), "signed": check_signed(product="acme-erp2")}
        ),
        SignatureError,
        "not signed",
    ),
    "check-nonce-mismatch": (
        lambda: run_check(sign(check_signed(nonce="cd" * 16), [CHECK])),
        ReplayError,
        "nonce",
    ),
    "check-for-another-installation": (
        lambda: run_check(sign(check_signed(installation_id="inst-other-0000000"), [CHECK])),
        ReplayError,
        "another installation",
    ),
    "check-expired": (
        lambda: run_check(sign(check_signed(), [CHECK]), now=NOW + timedelta(hours=2)),
        ReplayError,
        "check response expired",
    ),
    "check-for-another-platform": (
        lambda: run_check(sign(check_signed(platform="windows-x86_64"), [CHECK])),
        WrongTargetError,
        "platform",
    ),
    "check-signed-after-the-root-expired": (
        lambda: run_check(
            sign(
                check_signed(
                    issued_at=iso(FAR + timedelta(days=1)), expires_at=iso(FAR + timedelta(days=2))
                ),
                [CHECK],
            )
        ),
        ExpiredRootError,
        "is behind: set it",
    ),
    "offer-names-another-version": (
        lambda: run_check(offer(version="9.0.0")),
        VerificationError,
        "offer names '9.0.0'",
    ),
    "offer-without-download-url": (
        lambda: run_check(offer(download=None)),
        VerificationError,
        "no download URL",
    ),
    # --- manifests
    "manifest-signed-by-the-check-key": (
        lambda: run_manifest(sign(manifest_signed(), [CHECK])),
        SignatureError,
        "not signed",
    ),
    "manifest-for-another-product": (
        lambda: run_manifest(sign(manifest_signed(product="other"), [RELEASE])),
        WrongTargetError,
        "is for 'other'",
    ),
    "manifest-without-our-platform": (
        lambda: run_manifest(sign(manifest_signed(), [RELEASE]), platform="macos-aarch64"),
        WrongTargetError,
        "no artifact for macos-aarch64",
    ),
    "manifest-older-than-installed": (
        lambda: run_manifest(sign(manifest_signed(), [RELEASE]), installed=Version("2.0")),
        DowngradeError,
        "not newer than the installed 2.0",
    ),
    "manifest-same-as-installed": (
        lambda: run_manifest(sign(manifest_signed(), [RELEASE]), installed=Version("1.1.0")),
        DowngradeError,
        "not newer",
    ),
    "manifest-min-from-not-met": (
        lambda: run_manifest(sign(manifest_signed(min_from="1.0.5"), [RELEASE])),
        WrongTargetError,
        "only be installed over 1.0.5",
    ),
    "manifest-bad-hash-field": (
        lambda: run_manifest(
            sign(
                manifest_signed(artifacts={"linux-x86_64": {"size": 1, "sha256": "xyz"}}), [RELEASE]
            )
        ),
        VerificationError,
        "malformed",
    ),
    "manifest-version-not-a-version": (
        lambda: run_manifest(sign(manifest_signed(version="latest"), [RELEASE])),
        VerificationError,
        "is not a version",
    ),
    # --- artifacts
    "artifact-one-byte-short": (
        lambda: check_artifact(
            len(ARTIFACT) - 1,
            hashlib.sha256(ARTIFACT).hexdigest(),
            run_manifest(sign(manifest_signed(), [RELEASE])).artifact,
        ),
        ArtifactError,
        "bytes, the manifest says",
    ),
    "artifact-hash-mismatch": (
        lambda: check_artifact(
            len(ARTIFACT), "0" * 64, run_manifest(sign(manifest_signed(), [RELEASE])).artifact
        ),
        ArtifactError,
        "SHA-256",
    ),
}


@pytest.mark.parametrize(("attempt", "error", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals(attempt: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        attempt()


def test_a_good_check_with_its_manifest_verifies() -> None:
    answer = run_check(sign(check_signed(), [CHECK]))
    assert answer.manifest is not None
    assert answer.manifest.version == Version("1.1.0")
    assert answer.manifest.artifact.size == len(ARTIFACT)
    assert answer.download_url == "https://updates.example/d/1"


def test_unknown_and_broken_signatures_are_ignored_when_the_threshold_is_met() -> None:
    document = sign(check_signed(), [CHECK])
    document["signatures"] = [
        {"keyid": "0" * 64, "sig": "00" * 64},
        {"keyid": CHECK.keyid, "sig": "not hex"},
        *document["signatures"],
    ]
    assert run_check(document).manifest is not None


def test_root_without_a_check_role_lets_the_release_key_sign_checks() -> None:
    root = trust_initial_root(sign(root_signed(1, FAR, [ROOT], [RELEASE], None), [ROOT]))
    assert run_check(sign(check_signed(), [RELEASE]), root=root).manifest is not None


def test_rotation_to_new_root_keys_is_accepted() -> None:
    root_2 = verify_next_root(trusted(), next_root([ROOT, NEW_ROOT], [NEW_ROOT]))
    assert root_2.version == 2
    assert root_2.role("root").keyids == {NEW_ROOT.keyid}


def test_platform_any_and_allowed_downgrade() -> None:
    spec = manifest_signed()["artifacts"]["linux-x86_64"]
    manifest = run_manifest(
        sign(manifest_signed(artifacts={"any": spec}), [RELEASE]),
        installed=Version("3.0"),
        allow_downgrade=True,
    )
    assert manifest.artifact.platform == "any"


def expired_root() -> TrustedRoot:
    expires = datetime(2026, 6, 1, tzinfo=UTC)
    return trust_initial_root(sign(root_signed(1, expires, [ROOT], [RELEASE], [CHECK]), [ROOT]))


@pytest.mark.parametrize(
    ("now", "hint"),
    [
        (datetime(1970, 1, 2, tzinfo=UTC), "cannot be right: set the clock"),
        (datetime(2019, 5, 1, tzinfo=UTC), "cannot be right: set the clock"),
        (datetime(2040, 1, 1, tzinfo=UTC), "far ahead: check it"),
        (datetime(2026, 6, 2, tzinfo=UTC), "expired on 2026-06-01"),
    ],
    ids=["clock-in-1970", "clock-in-2019", "clock-in-2040", "really-expired"],
)
def test_expired_root_message_says_when_the_clock_looks_wrong(now: datetime, hint: str) -> None:
    with pytest.raises(ExpiredRootError) as refused:
        check_root_fresh(expired_root(), now)
    assert hint in str(refused.value)


def test_a_root_is_fresh_until_it_expires() -> None:
    check_root_fresh(expired_root(), datetime(2026, 6, 1, tzinfo=UTC) - timedelta(seconds=1))


def test_a_few_minutes_of_clock_skew_are_tolerated() -> None:
    answer = run_check(sign(check_signed(), [CHECK]), now=NOW + timedelta(hours=1, minutes=4))
    assert answer.manifest is not None
