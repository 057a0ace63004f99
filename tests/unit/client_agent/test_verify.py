"""The pure verifier on its own: a named table of refusals, and what it must accept.

Documents are made by tests/common/agent_sim.py, an implementation of the protocol that shares
no code with the agent.
"""

from __future__ import annotations

import hashlib
import json
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
from client_agent.roots import (
    EARLIEST_PLAUSIBLE,
    RENEW_ROOT,
    TrustedRoot,
    check_root_fresh,
    trust_initial_root,
    verify_next_root,
)
from client_agent.verify import (
    Artifact,
    CheckAnswer,
    Manifest,
    PatchOffer,
    check_artifact,
    verify_check,
    verify_manifest,
    verify_patch,
)
from tests.common.agent_sim import Key, iso, root_signed, sign

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
FAR = NOW + timedelta(days=365)
ROOT, RELEASE, CHECK = Key(), Key(), Key()
ROOT_1 = sign(root_signed(1, FAR, [ROOT], [RELEASE], [CHECK]), [ROOT])
ARTIFACT = b"the artifact"


LICENSE_KEY = "vgl_this-installation-s-license"


def trusted() -> TrustedRoot:
    return trust_initial_root(ROOT_1)


def manifest_signed(**changes: Any) -> dict[str, Any]:
    signed = {
        "type": "release",
        "product": "acme-erp",
        "version": "1.1.0",
        "kind": "update",
        "severity": None,
        "channel": "stable",
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
        "channel": "stable",
        "installed_version": "1.0.0",
        "license_fingerprint": hashlib.sha256(LICENSE_KEY.encode()).hexdigest(),
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
        "channel": "stable",
        "sent_version": "1.0.0",
        "license_key": LICENSE_KEY,
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


def changed_root(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Root 1, with ``change`` made to its signed part before it is signed."""
    signed = root_signed(1, FAR, [ROOT], [RELEASE], [CHECK])
    change(signed)
    return sign(signed, [ROOT])


def unsigned(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "signatures"}


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
        "threshold must be an integer",
    ),
    "root-version-zero": (
        lambda: trust_initial_root(changed_root(lambda s: s.update(version=0))),
        VerificationError,
        "root version must be a positive integer",
    ),
    "root-version-true": (
        lambda: trust_initial_root(changed_root(lambda s: s.update(version=True))),
        VerificationError,
        "root version must be a positive integer",
    ),
    "root-expiry-not-a-time": (
        lambda: trust_initial_root(changed_root(lambda s: s.update(expires="next year"))),
        VerificationError,
        "root expiry is not a time",
    ),
    "root-without-a-release-role": (
        lambda: trust_initial_root(changed_root(lambda s: s["roles"].pop("release"))),
        VerificationError,
        "lacks the 'release' role",
    ),
    "root-without-a-check-role": (
        lambda: trust_initial_root(sign(root_signed(1, FAR, [ROOT], [RELEASE], None), [ROOT])),
        VerificationError,
        "lacks the 'check' role",
    ),
    "root-without-a-root-role": (
        lambda: trust_initial_root(changed_root(lambda s: s["roles"].pop("root"))),
        VerificationError,
        "lacks the 'root' role",
    ),
    "root-of-another-type": (
        lambda: trust_initial_root(changed_root(lambda s: s.update(type="release"))),
        VerificationError,
        "not a signed 'root' document",
    ),
    "root-key-of-an-unknown-scheme": (
        lambda: trust_initial_root(
            changed_root(lambda s: [spec.update(scheme="rsa") for spec in s["keys"].values()])
        ),
        VerificationError,
        "has an unknown scheme",
    ),
    "role-threshold-zero": (
        lambda: trust_initial_root(
            changed_root(lambda s: s["roles"]["release"].update(threshold=0))
        ),
        VerificationError,
        "root role 'release' has an impossible threshold",
    ),
    "check-threshold-zero": (
        lambda: trust_initial_root(changed_root(lambda s: s["roles"]["check"].update(threshold=0))),
        VerificationError,
        "root role 'check' has an impossible threshold",
    ),
    "root-version-not-an-integer": (
        lambda: trust_initial_root(changed_root(lambda s: s.update(version="1"))),
        VerificationError,
        "root version must be a positive integer",
    ),
    "next-root-of-another-type": (
        lambda: verify_next_root(
            trusted(), sign({**next_root([ROOT], [ROOT])["signed"], "type": "check"}, [ROOT])
        ),
        VerificationError,
        "not a signed 'root' document",
    ),
    "role-the-root-does-not-define": (
        lambda: trusted().role("snapshot"),
        VerificationError,
        "root version 1 has no 'snapshot' role",
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
    "check-not-a-json-object": (
        lambda: run_check(["a", "list"]),
        VerificationError,
        "the check document is not a JSON object",
    ),
    "check-without-signatures": (
        lambda: run_check(unsigned(sign(check_signed(), [CHECK]))),
        SignatureError,
        "the check document carries no signatures",
    ),
    "check-for-another-product-offering-nothing": (
        lambda: run_check(sign(check_signed(product="acme-crm", update=None), [CHECK])),
        WrongTargetError,
        "the update server's answer is for product 'acme-crm', not 'acme-erp'",
    ),
    "check-for-another-platform-offering-nothing": (
        lambda: run_check(sign(check_signed(platform="windows-x86_64", update=None), [CHECK])),
        WrongTargetError,
        "platform",
    ),
    "check-signed-only-by-the-release-key-offering-nothing": (
        lambda: run_check(sign(check_signed(update=None), [RELEASE])),
        SignatureError,
        "not signed by the keys root names for 'check'",
    ),
    "check-signed-by-the-root-key": (
        lambda: run_check(sign(check_signed(), [ROOT])),
        SignatureError,
        "not signed by the keys root names for 'check'",
    ),
    "check-whose-manifest-is-signed-only-by-the-check-key": (
        lambda: run_check(sign(check_signed(sign(manifest_signed(), [CHECK])), [CHECK])),
        SignatureError,
        "not signed by the keys root names for 'release'",
    ),
    "check-whose-manifest-is-a-check": (
        lambda: run_check(sign(check_signed(sign(check_signed(), [RELEASE])), [CHECK])),
        VerificationError,
        "not a signed 'release' document",
    ),
    "check-for-another-product": (
        lambda: run_check(sign(check_signed(product="acme-crm"), [CHECK])),
        WrongTargetError,
        "the update server's answer is for product 'acme-crm', not 'acme-erp' (refused)",
    ),
    "check-for-another-platform": (
        lambda: run_check(sign(check_signed(platform="windows-x86_64"), [CHECK])),
        WrongTargetError,
        "is for platform 'windows-x86_64', not 'linux-x86_64' (refused)",
    ),
    "check-without-its-platform": (
        lambda: run_check(sign(check_signed(platform=None), [CHECK])),
        WrongTargetError,
        "is for platform None, not 'linux-x86_64' (refused)",
    ),
    "check-for-another-channel": (
        lambda: run_check(sign(check_signed(channel="beta"), [CHECK])),
        WrongTargetError,
        "the update server's answer is for channel 'beta', not 'stable' (refused)",
    ),
    "check-for-another-installed-version": (
        # The request's "1.0.0" rewritten to "1.2.0" on the way: the server says "up to date".
        lambda: run_check(sign(check_signed(installed_version="1.2.0", update=None), [CHECK])),
        WrongTargetError,
        "is for installed version '1.2.0', not '1.0.0' (refused)",
    ),
    "check-for-nothing-installed-answered-as-installed": (
        lambda: run_check(sign(check_signed(), [CHECK]), installed=None, sent_version="0"),
        WrongTargetError,
        "is for installed version '1.0.0', not '0' (refused)",
    ),
    "check-for-another-license": (
        lambda: run_check(
            sign(
                check_signed(
                    license_fingerprint=hashlib.sha256(b"vgl_another-customer").hexdigest(),
                    update=None,
                ),
                [CHECK],
            )
        ),
        WrongTargetError,
        "is for another license, not the configured one",
    ),
    "check-without-a-license-fingerprint": (
        lambda: run_check(sign(check_signed(license_fingerprint=None), [CHECK])),
        WrongTargetError,
        "is for another license",
    ),
    "check-offering-a-release-of-another-channel": (
        lambda: run_check(
            sign(check_signed(sign(manifest_signed(channel="beta"), [RELEASE])), [CHECK])
        ),
        WrongTargetError,
        "the offered release is for channel 'beta', not 'stable'",
    ),
    "check-offering-a-release-naming-no-channel": (
        lambda: run_check(
            sign(check_signed(sign(manifest_signed(channel=None), [RELEASE])), [CHECK])
        ),
        VerificationError,
        "the manifest names no channel",
    ),
    "check-issue-time-missing": (
        lambda: run_check(sign(check_signed(issued_at=None), [CHECK])),
        VerificationError,
        "check issue time is missing",
    ),
    "check-issue-time-without-a-zone": (
        lambda: run_check(sign(check_signed(issued_at="2026-11-25T12:00:00"), [CHECK])),
        VerificationError,
        "check issue time has no time zone",
    ),
    "check-issue-time-with-a-lowercase-z": (
        lambda: run_check(sign(check_signed(issued_at="2026-11-25T12:00:00z"), [CHECK])),
        VerificationError,
        "check issue time is not a time",
    ),
    "check-expiry-not-a-time": (
        lambda: run_check(sign(check_signed(expires_at="soon"), [CHECK])),
        VerificationError,
        "check expiry is not a time",
    ),
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
    "check-signed-the-instant-the-root-expired": (
        lambda: run_check(
            sign(check_signed(issued_at=iso(FAR), expires_at=iso(FAR + timedelta(days=1))), [CHECK])
        ),
        ExpiredRootError,
        "is behind: set it",
    ),
    "offer-malformed": (
        lambda: run_check(sign(check_signed(update="1.1.0"), [CHECK])),
        VerificationError,
        "the offered update is malformed",
    ),
    "offer-older-than-installed": (
        lambda: run_check(sign(check_signed(), [CHECK]), installed=Version("2.0")),
        DowngradeError,
        "not newer than the installed 2.0",
    ),
    "offer-apply-by-not-a-time": (
        lambda: run_check(offer(apply_by="tomorrow")),
        VerificationError,
        "apply-by time is not a time",
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
    "manifest-min-from-just-above-installed": (
        lambda: run_manifest(sign(manifest_signed(min_from="1.0.1"), [RELEASE])),
        WrongTargetError,
        "only be installed over 1.0.1",
    ),
    "manifest-signed-by-the-root-key": (
        lambda: run_manifest(sign(manifest_signed(), [ROOT])),
        SignatureError,
        "not signed by the keys root names for 'release'",
    ),
    "manifest-of-another-type": (
        lambda: run_manifest(sign({**manifest_signed(), "type": "patches"}, [RELEASE])),
        VerificationError,
        "not a signed 'release' document",
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
        "manifest version 'latest' is not a version",
    ),
    "manifest-min-from-not-a-version": (
        lambda: run_manifest(sign(manifest_signed(min_from="soon"), [RELEASE])),
        VerificationError,
        "min_from 'soon' is not a version",
    ),
    "manifest-without-artifacts": (
        lambda: run_manifest(sign(manifest_signed(artifacts=None), [RELEASE])),
        VerificationError,
        "the manifest lists no artifacts",
    ),
    "manifest-without-publication-time": (
        lambda: run_manifest(sign(manifest_signed(published_at=None), [RELEASE])),
        VerificationError,
        "publication time is missing",
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


def test_a_good_check_with_its_manifest_verifies_into_what_they_say() -> None:
    manifest = sign(manifest_signed(kind="security", severity="critical"), [RELEASE])
    signed = check_signed(manifest, entitlement={"status": "active", "message": "Wartung läuft"})
    signed["update"]["apply_by"] = iso(NOW + timedelta(hours=8))
    answer = run_check(sign(signed, [CHECK]))
    assert answer == CheckAnswer(
        signed=signed,
        manifest=Manifest(
            product="acme-erp",
            version=Version("1.1.0"),
            kind="security",
            severity="critical",
            published_at=NOW - timedelta(days=1),
            artifact=Artifact(
                "linux-x86_64", "a.tar.gz", len(ARTIFACT), hashlib.sha256(ARTIFACT).hexdigest()
            ),
            document=manifest,
            channel="stable",
        ),
        download_url="https://updates.example/d/1",
        apply_by=NOW + timedelta(hours=8),
        issued_at=NOW,
        patch=None,
    )
    assert answer.entitlement == {"status": "active", "message": "Wartung läuft"}


def test_a_check_with_nothing_to_offer_verifies() -> None:
    signed = check_signed(update=None)
    assert run_check(sign(signed, [CHECK])) == CheckAnswer(signed, None, None, None, NOW)


def test_what_a_check_or_manifest_may_leave_out() -> None:
    check = check_signed()
    del check["update"]["version"]  # the manifest names it
    assert run_check(sign(check, [CHECK])).manifest is not None
    spec = {"size": len(ARTIFACT), "sha256": hashlib.sha256(ARTIFACT).hexdigest()}
    sparse = manifest_signed(severity=3, artifacts={"linux-x86_64": spec})
    del sparse["kind"]
    manifest = run_manifest(sign(sparse, [RELEASE]))
    assert (manifest.kind, manifest.severity, manifest.artifact.filename) == ("", None, "")


def test_an_empty_artifact_and_an_install_at_min_from_are_accepted() -> None:
    empty = {"filename": "a.tar.gz", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    manifest = run_manifest(
        sign(manifest_signed(min_from="1.0.0", artifacts={"linux-x86_64": empty}), [RELEASE])
    )
    assert manifest.artifact.size == 0


def test_a_downgrade_the_user_asked_for_is_checked_as_such() -> None:
    answer = run_check(
        sign(check_signed(), [CHECK]), installed=Version("2.0"), allow_downgrade=True
    )
    assert answer.manifest is not None and answer.manifest.version == Version("1.1.0")


def test_unknown_and_broken_signatures_are_ignored_when_the_threshold_is_met() -> None:
    unlisted = "ab" * 32  # the check role names it; the root lists no such key
    root = trust_initial_root(
        changed_root(lambda s: s["roles"]["check"]["keyids"].append(unlisted))
    )
    document = sign(check_signed(), [CHECK])
    document["signatures"] = [
        "not an object",
        {"keyid": CHECK.keyid, "sig": None},
        {"keyid": "0" * 64, "sig": "00" * 64},
        {"keyid": unlisted, "sig": "00" * 64},
        {"keyid": CHECK.keyid, "sig": "not hex"},
        {"keyid": CHECK.keyid, "sig": "00" * 64},
        *document["signatures"],
    ]
    assert run_check(document, root=root).manifest is not None


def test_a_signed_text_in_any_language_verifies() -> None:
    entitlement = {"message": "La maintenance se termine le 31 décembre — renouvelez-la."}
    answer = run_check(sign(check_signed(entitlement=entitlement), [CHECK]))
    assert answer.entitlement == entitlement


def test_a_signature_covers_the_utf8_text_not_an_ascii_escape_of_it() -> None:
    # Signed over "\u00f1" escapes, the same text must not verify: the bytes are UTF-8.
    entitlement = {"message": "El mantenimiento terminó: renuévelo en España."}
    signed = check_signed(entitlement=entitlement)
    escaped = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    document = {
        "signed": signed,
        "signatures": [{"keyid": CHECK.keyid, "sig": CHECK.private.sign(escaped).hex()}],
    }
    with pytest.raises(SignatureError):
        run_check(document)


def test_a_root_of_an_older_instance_naming_one_key_for_both_roles_still_verifies() -> None:
    root = trust_initial_root(sign(root_signed(1, FAR, [ROOT], [RELEASE], [RELEASE]), [ROOT]))
    assert run_check(sign(check_signed(), [RELEASE]), root=root).manifest is not None


def test_each_role_verifies_its_own_documents_with_separate_keys() -> None:
    # The keys of one role never stand in for the other, whichever of them signs alone.
    assert run_check(sign(check_signed(), [CHECK])).manifest is not None
    assert run_manifest(sign(manifest_signed(), [RELEASE])).version == Version("1.1.0")
    both = sign(check_signed(), [RELEASE, CHECK])
    assert run_check(both).manifest is not None


def test_rotation_to_new_root_keys_is_accepted() -> None:
    document = next_root([ROOT, NEW_ROOT], [NEW_ROOT])
    root_2 = verify_next_root(trusted(), document)
    assert root_2.version == 2
    assert root_2.role("root").keyids == {NEW_ROOT.keyid}
    assert root_2.document == document, "the agent stores the root it now trusts"


def test_a_two_of_two_root_signed_by_both_rotates() -> None:
    root_2 = verify_next_root(ROOT_TWO_OF_TWO, next_root(TWO_OF_TWO, TWO_OF_TWO))
    assert root_2.version == 2


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


EXPIRED_ROOT_MESSAGES = {
    "clock-in-1970": (
        datetime(1970, 1, 2, tzinfo=UTC),
        "cannot tell whether root version 1 has expired: this machine's clock says 1970-01-02, "
        "which cannot be right: set the clock",
    ),
    "clock-in-2019": (
        datetime(2019, 5, 1, tzinfo=UTC),
        "cannot tell whether root version 1 has expired: this machine's clock says 2019-05-01, "
        "which cannot be right: set the clock",
    ),
    "really-expired": (
        datetime(2026, 6, 2, tzinfo=UTC),
        "the trusted root (version 1) expired on 2026-06-01 00:00 UTC; " + RENEW_ROOT,
    ),
    "the-instant-it-expires": (
        datetime(2026, 6, 1, tzinfo=UTC),
        "the trusted root (version 1) expired on 2026-06-01 00:00 UTC; " + RENEW_ROOT,
    ),
    "a-year-late": (
        datetime(2027, 6, 1, tzinfo=UTC),
        "the trusted root (version 1) expired on 2026-06-01 00:00 UTC; " + RENEW_ROOT,
    ),
    "a-year-and-a-day-late": (
        datetime(2027, 6, 2, tzinfo=UTC),
        "the trusted root (version 1) expired on 2026-06-01 00:00 UTC — or this machine's "
        "clock (2027-06-02 00:00 UTC) is far ahead: check it; " + RENEW_ROOT,
    ),
}


@pytest.mark.parametrize(
    ("now", "message"), EXPIRED_ROOT_MESSAGES.values(), ids=EXPIRED_ROOT_MESSAGES.keys()
)
def test_expired_root_message_says_when_the_clock_looks_wrong(now: datetime, message: str) -> None:
    with pytest.raises(ExpiredRootError) as refused:
        check_root_fresh(expired_root(), now)
    assert str(refused.value) == message


def test_a_root_is_fresh_until_it_expires() -> None:
    check_root_fresh(expired_root(), datetime(2026, 6, 1, tzinfo=UTC) - timedelta(seconds=1))
    check_root_fresh(trusted(), EARLIEST_PLAUSIBLE)


def test_a_few_minutes_of_clock_skew_are_tolerated() -> None:
    for late in (timedelta(minutes=4), timedelta(minutes=5)):
        answer = run_check(sign(check_signed(), [CHECK]), now=NOW + timedelta(hours=1) + late)
        assert answer.manifest is not None


EXPIRED_CHECK_MESSAGES = {
    "two-hours-late": (
        timedelta(hours=2),
        "the check response expired at 2026-11-25 13:00 UTC",
    ),
    "a-minute-short-of-a-day-late": (
        timedelta(hours=23, minutes=59),
        "the check response expired at 2026-11-25 13:00 UTC",
    ),
    "a-day-late": (
        timedelta(days=1),
        "the check response expired at 2026-11-25 13:00 UTC — or this machine's clock "
        "(2026-11-26 13:00 UTC) is ahead: check it",
    ),
}


@pytest.mark.parametrize(
    ("late", "message"), EXPIRED_CHECK_MESSAGES.values(), ids=EXPIRED_CHECK_MESSAGES.keys()
)
def test_expired_check_message_says_when_the_clock_looks_wrong(
    late: timedelta, message: str
) -> None:
    expires = NOW + timedelta(hours=1)
    with pytest.raises(ReplayError) as refused:
        run_check(sign(check_signed(), [CHECK]), now=expires + late)
    assert str(refused.value) == message


# --------------------------------------------------------------------------- patches


def patches_signed(**changes: Any) -> dict[str, Any]:
    signed = {
        "type": "patches",
        "product": "acme-erp",
        "version": "1.1.0",
        "artifacts": {
            "linux-x86_64": {
                "artifact_sha256": hashlib.sha256(ARTIFACT).hexdigest(),
                "content_sha256": "c" * 64,
                "content_size": 2048,
                "patches": {
                    "1.0.0": {"sha256": "d" * 64, "size": 45, "from_content_sha256": "e" * 64}
                },
            }
        },
    }
    return {**signed, **changes}


def patch_entry(**changes: Any) -> dict[str, Any]:
    """The patches document's entry for linux-x86_64, with ``changes``."""
    return {**patches_signed()["artifacts"]["linux-x86_64"], **changes}


def patch_offer(document: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    offered = {
        "from_version": "1.0.0",
        "document": document or sign(patches_signed(), [RELEASE]),
        "download": {"url": "https://updates.example/p/1", "size": 45, "sha256": "d" * 64},
    }
    return {**offered, **changes}


def signed_patches(**changes: Any) -> dict[str, Any]:
    return patch_offer(sign(patches_signed(**changes), [RELEASE]))


PATCH = PatchOffer(
    url="https://updates.example/p/1",
    size=45,
    sha256="d" * 64,
    from_version="1.0.0",
    from_content_sha256="e" * 64,
    content_sha256="c" * 64,
    content_size=2048,
)


def test_a_patch_offered_with_the_update_verifies() -> None:
    # A document from a server before zstd names no format: its patches are "vigor1".
    assert run_check(offer(patch=patch_offer())).patch == PATCH
    assert PATCH.format == "vigor1"


def with_format(patch_format: str) -> dict[str, Any]:
    described = {"sha256": "d" * 64, "size": 45, "from_content_sha256": "e" * 64}
    entry = patch_entry(patches={"1.0.0": {**described, "format": patch_format}})
    return signed_patches(artifacts={"linux-x86_64": entry})


def test_the_patch_format_comes_from_the_signed_document() -> None:
    answer = run_check(offer(patch=with_format("zstd1")))
    assert answer.patch == PatchOffer(**{**PATCH.__dict__, "format": "zstd1"})


def test_a_patch_in_a_format_this_agent_cannot_read_is_ignored() -> None:
    answer = run_check(offer(patch=with_format("bsdiff4")))
    assert answer.patch is None
    assert answer.manifest is not None and answer.download_url == "https://updates.example/d/1"
    with pytest.raises(VerificationError, match=r"cannot read \(bsdiff4\)"):
        verify_patch(
            {"version": "1.1.0", "patch": with_format("bsdiff4")}, trusted(), manifest_1_1()
        )
    # An agent that reads only the old format ignores a zstd1 patch the same way.
    with pytest.raises(VerificationError, match=r"cannot read \(zstd1\)"):
        verify_patch(
            {"version": "1.1.0", "patch": with_format("zstd1")},
            trusted(),
            manifest_1_1(),
            formats=("vigor1",),
        )


def test_a_patch_that_does_not_verify_is_ignored_and_the_full_download_stays() -> None:
    answer = run_check(offer(patch=patch_offer(from_version="0.9.0")))
    assert answer.patch is None
    assert answer.manifest is not None and answer.download_url == "https://updates.example/d/1"


def manifest_1_1() -> Manifest:
    manifest: Manifest = run_manifest(sign(manifest_signed(), [RELEASE]))
    return manifest


def test_an_update_without_a_patch_has_none() -> None:
    assert verify_patch({"version": "1.1.0"}, trusted(), manifest_1_1()) is None


PATCH_REFUSALS: dict[str, tuple[Any, type[Exception], str]] = {
    "offer-not-an-object": ("patch", VerificationError, "the offered patch is malformed"),
    "signed-by-the-check-key": (
        patch_offer(sign(patches_signed(), [CHECK])),
        SignatureError,
        "not signed by the keys root names for 'release'",
    ),
    "document-of-another-type": (
        patch_offer(sign(manifest_signed(), [RELEASE])),
        VerificationError,
        "not a signed 'patches' document",
    ),
    "for-another-product": (
        signed_patches(product="acme-crm"),
        VerificationError,
        "the patches document is for another release",
    ),
    "for-another-version": (
        signed_patches(version="1.2.0"),
        VerificationError,
        "the patches document is for another release",
    ),
    "for-another-artifact-of-the-release": (
        signed_patches(artifacts={"linux-x86_64": patch_entry(artifact_sha256="f" * 64)}),
        VerificationError,
        "the patches document rebuilds another artifact than the manifest's",
    ),
    "without-the-artifact-it-rebuilds": (
        signed_patches(
            artifacts={
                "linux-x86_64": {k: v for k, v in patch_entry().items() if k != "artifact_sha256"}
            }
        ),
        VerificationError,
        "the patches document rebuilds another artifact than the manifest's",
    ),
    "signature-over-another-version": (
        {
            **patch_offer(),
            "document": {
                **sign(patches_signed(), [RELEASE]),
                "signed": patches_signed(version="1.2.0"),
            },
        },
        SignatureError,
        "not signed by the keys root names for 'release'",
    ),
    "unsigned": (
        patch_offer(unsigned(sign(patches_signed(), [RELEASE]))),
        SignatureError,
        "the patches document carries no signatures",
    ),
    "for-another-product-and-version-alike": (
        signed_patches(product="acme-crm", version="1.2.0"),
        VerificationError,
        "the patches document is for another release",
    ),
    "no-entry-for-the-platform": (
        signed_patches(artifacts={"windows-x86_64": patch_entry()}),
        VerificationError,
        "the offered patch is malformed",
    ),
    "artifacts-not-an-object": (
        signed_patches(artifacts=[patch_entry()]),
        VerificationError,
        "the offered patch is malformed",
    ),
    "download-not-an-object": (
        patch_offer(download="https://updates.example/p/1"),
        VerificationError,
        "the offered patch is malformed",
    ),
    "from-version-not-a-string": (
        patch_offer(from_version=1),
        VerificationError,
        "the offered patch is malformed",
    ),
    "no-patch-from-the-installed-version": (
        patch_offer(from_version="0.9.0"),
        VerificationError,
        "the patches document lists no patch from 0.9.0",
    ),
    "patches-not-an-object": (
        signed_patches(artifacts={"linux-x86_64": patch_entry(patches=["1.0.0"])}),
        VerificationError,
        "the patches document lists no patch from 1.0.0",
    ),
    "patch-size-missing": (
        signed_patches(
            artifacts={
                "linux-x86_64": patch_entry(
                    patches={"1.0.0": {"sha256": "d" * 64, "from_content_sha256": "e" * 64}}
                )
            }
        ),
        VerificationError,
        "the patches document is malformed",
    ),
    "content-size-not-a-number": (
        signed_patches(artifacts={"linux-x86_64": patch_entry(content_size="big")}),
        VerificationError,
        "the patches document is malformed",
    ),
    "download-url-missing": (
        patch_offer(download={"size": 45, "sha256": "d" * 64}),
        VerificationError,
        "the patches document is malformed",
    ),
    "download-hash-differs": (
        patch_offer(download={"url": "u", "size": 45, "sha256": "f" * 64}),
        VerificationError,
        "the patch download does not match the signed patches document",
    ),
    "download-size-differs": (
        patch_offer(download={"url": "u", "size": 46, "sha256": "d" * 64}),
        VerificationError,
        "the patch download does not match the signed patches document",
    ),
}


@pytest.mark.parametrize(
    ("patch", "error", "message"), PATCH_REFUSALS.values(), ids=PATCH_REFUSALS.keys()
)
def test_patch_refusals(patch: Any, error: type[Exception], message: str) -> None:
    update = {"version": "1.1.0", "patch": patch}
    with pytest.raises(error, match=re.escape(message)):
        verify_patch(update, trusted(), manifest_1_1())


@pytest.mark.parametrize("release_channel", ["beta", "stable"])
def test_an_installation_on_beta_takes_beta_and_stable_releases(release_channel: str) -> None:
    manifest = sign(manifest_signed(channel=release_channel), [RELEASE])
    answer = run_check(sign(check_signed(manifest, channel="beta"), [CHECK]), channel="beta")
    assert answer.manifest is not None and answer.manifest.version == Version("1.1.0")
