"""The pure verifier, part one: signed documents and the root that says who may sign them.

No network, no disk, no clock: ``now`` is a parameter. This is the agent's own implementation
of docs/protocol.md (it never imports the server), so the two sides check each other.

A signed document is ``{"signed": {...}, "signatures": [{"keyid", "sig"}]}``; the signatures
cover the canonical bytes of ``signed``. Root metadata names the keys and, per role, which of
them sign and how many must (the threshold). The shipped root is pinned and checked against its
own keys; root N+1 must be signed by the threshold of root N's root keys and of its own
(trust.py walks and stores the chain). Every other document is checked with
:func:`verify_role` against the newest trusted root (verify.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from client_agent.errors import ExpiredRootError, SignatureError, VerificationError

__all__ = [
    "EARLIEST_PLAUSIBLE",
    "Role",
    "TrustedRoot",
    "canonical",
    "check_clock_against",
    "check_root_fresh",
    "parse_time",
    "trust_initial_root",
    "verify_next_root",
    "verify_role",
]

# A clock before this is certainly wrong (the protocol did not exist yet).
EARLIEST_PLAUSIBLE = datetime(2024, 1, 1, tzinfo=UTC)


def canonical(signed: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8 (docs/protocol.md)."""
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_time(value: Any, what: str) -> datetime:
    """An ISO-8601 time with a zone; ``what`` names it in the error.

    Raises:
        VerificationError: the time is missing, not ISO-8601, or has no time zone.
    """
    if not isinstance(value, str):
        raise VerificationError(f"{what} is missing")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise VerificationError(f"{what} is not a time: {value!r}") from None
    if moment.tzinfo is None:
        raise VerificationError(f"{what} has no time zone")
    return moment


@dataclass(frozen=True)
class Role:
    """Who may sign for a role: key ids and how many of them must."""

    keyids: frozenset[str]
    threshold: int


@dataclass(frozen=True)
class TrustedRoot:
    """A root whose signatures were checked: who may sign what, until when."""

    version: int
    expires: datetime
    keys: Mapping[str, Ed25519PublicKey]
    roles: Mapping[str, Role]
    document: Mapping[str, Any]

    def role(self, name: str) -> Role:
        """The role ``name``: each document is checked against the keys of its own role only.

        Raises:
            VerificationError: this root does not define the role.
        """
        role = self.roles.get(name)
        if role is None:
            raise VerificationError(f"root version {self.version} has no {name!r} role")
        return role


def _signed_part(document: Any, expected_type: str) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise VerificationError(f"the {expected_type} document is not a JSON object")
    signed = document.get("signed")
    if not isinstance(signed, Mapping) or signed.get("type") != expected_type:
        raise VerificationError(f"not a signed {expected_type!r} document")
    if not isinstance(document.get("signatures"), list):
        raise SignatureError(f"the {expected_type} document carries no signatures")
    return signed


def _valid_signers(
    document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey], allowed: frozenset[str]
) -> set[str]:
    data = canonical(document["signed"])
    valid: set[str] = set()
    for entry in document["signatures"]:
        if not isinstance(entry, Mapping):
            continue
        keyid, sig = entry.get("keyid"), entry.get("sig")
        if (
            not isinstance(keyid, str)
            or not isinstance(sig, str)
            or keyid not in allowed
            or keyid in valid
        ):
            continue
        key = keys.get(keyid)
        if key is None:
            continue
        try:
            key.verify(bytes.fromhex(sig), data)
        except (InvalidSignature, ValueError):
            continue
        valid.add(keyid)
    return valid


def _whole(value: Any, what: str) -> int:
    # bool is an int in Python; a signed document saying `true` for a count is malformed.
    if not isinstance(value, int) or isinstance(value, bool):
        raise VerificationError(f"{what} must be an integer")
    return value


def _parse_root(document: Any) -> TrustedRoot:
    signed = _signed_part(document, "root")
    try:
        keys: dict[str, Ed25519PublicKey] = {}
        for keyid, spec in signed["keys"].items():
            raw = bytes.fromhex(spec["public"])
            if spec.get("scheme") != "ed25519":
                raise VerificationError(f"root key {keyid[:12]}… has an unknown scheme")
            if hashlib.sha256(raw).hexdigest() != keyid:
                raise VerificationError(f"root key {keyid[:12]}… does not match its id")
            keys[keyid] = Ed25519PublicKey.from_public_bytes(raw)
        roles = {
            name: Role(frozenset(spec["keyids"]), _whole(spec["threshold"], "threshold"))
            for name, spec in signed["roles"].items()
        }
        version = signed["version"]
        expires = parse_time(signed["expires"], "root expiry")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise VerificationError(f"malformed root metadata: {exc}") from None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VerificationError("root version must be a positive integer")
    for name in ("root", "release", "check"):
        if name not in roles:
            raise VerificationError(f"root metadata lacks the {name!r} role")
    for name, role in roles.items():
        if not 1 <= role.threshold <= len(role.keyids):
            raise VerificationError(f"root role {name!r} has an impossible threshold")
    return TrustedRoot(version, expires, keys, roles, document)


def trust_initial_root(document: Any) -> TrustedRoot:
    """The root shipped with the application: pinned, checked against its own keys.

    Raises:
        VerificationError: not a root document, or malformed (keys, roles, thresholds, version,
            expiry).
        SignatureError: it carries no signatures, or too few of its own root keys signed it.
    """
    root = _parse_root(document)
    role = root.role("root")
    if len(_valid_signers(document, root.keys, role.keyids)) < role.threshold:
        raise SignatureError("the shipped root is not signed by its own root keys")
    return root


def verify_next_root(trusted: TrustedRoot, document: Any) -> TrustedRoot:
    """Root N+1: signed by the threshold of root N's root keys and of its own.

    Raises:
        VerificationError: not a root document, malformed, or not version N+1.
        SignatureError: too few of root N's root keys, or of its own, signed it.
    """
    new = _parse_root(document)
    if new.version != trusted.version + 1:
        raise VerificationError(f"expected root version {trusted.version + 1}, got {new.version}")
    old_role = trusted.role("root")
    if len(_valid_signers(document, trusted.keys, old_role.keyids)) < old_role.threshold:
        raise SignatureError(
            f"root {new.version} is not signed by the keys of root {trusted.version}"
        )
    own = new.role("root")
    if len(_valid_signers(document, new.keys, own.keyids)) < own.threshold:
        raise SignatureError(f"root {new.version} is not signed by its own root keys")
    return new


# What a customer can do about an expired root: only the vendor can sign a new one.
RENEW_ROOT = (
    "ask the vendor to renew it (`vigor keys write-root` on the update server); updates "
    "resume by themselves once the server has a fresh root"
)


def check_root_fresh(root: TrustedRoot, now: datetime) -> None:
    """Refuse an expired root, and a clock too wrong to tell (it could not spot a stale root).

    Raises:
        ExpiredRootError: ``root`` expired at ``now``, or ``now`` is before 2024.
    """
    if now < EARLIEST_PLAUSIBLE:
        raise ExpiredRootError(
            f"cannot tell whether root version {root.version} has expired: this machine's clock says "
            f"{now:%Y-%m-%d}, which cannot be right: set the clock"
        )
    if now < root.expires:
        return
    hint = ""
    if (now - root.expires).days > 365:
        hint = f" — or this machine's clock ({now:%Y-%m-%d %H:%M} UTC) is far ahead: check it"
    raise ExpiredRootError(
        f"the trusted root (version {root.version}) expired on "
        f"{root.expires:%Y-%m-%d %H:%M} UTC{hint}; {RENEW_ROOT}"
    )


def check_clock_against(root: TrustedRoot, signed_time: datetime, now: datetime) -> None:
    """A time the server signed is a lower bound of the true time: when it is already past the
    root's expiry, the root has expired even if this machine's clock (behind) says otherwise.

    Raises:
        ExpiredRootError: ``signed_time`` is at or past the root's expiry.
    """
    if signed_time < root.expires:
        return
    raise ExpiredRootError(
        f"the trusted root (version {root.version}) expired on "
        f"{root.expires:%Y-%m-%d %H:%M} UTC, as the server's signed time "
        f"({signed_time:%Y-%m-%d %H:%M} UTC) shows; this machine's clock "
        f"({now:%Y-%m-%d %H:%M} UTC) is behind: set it"
    )


def verify_role(
    document: Any, root: TrustedRoot, role: str, expected_type: str
) -> Mapping[str, Any]:
    """The ``signed`` part of ``document`` once the role's threshold of signatures checks out.

    Raises:
        VerificationError: not a JSON object, not of ``expected_type``, or ``root`` has no such
            role.
        SignatureError: it carries no signatures, or fewer valid ones than the role's threshold.
    """
    signed = _signed_part(document, expected_type)
    spec = root.role(role)
    if len(_valid_signers(document, root.keys, spec.keyids)) < spec.threshold:
        raise SignatureError(
            f"the {expected_type} document is not signed by the keys root names for {role!r}"
        )
    return signed
