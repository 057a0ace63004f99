"""Signed documents and the root of trust (see docs/protocol.md).

Pure functions over bytes and keys: canonical JSON, Ed25519 signing through a small ``Signer``
seam (a key file today, a KMS tomorrow), threshold verification, and root metadata versions where
root N+1 must be signed by the threshold of root N and of itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROLES = ("root", "release", "check")
# The only key scheme root metadata may name (docs/protocol.md).
SCHEME = "ed25519"


class TrustError(Exception):
    """A signed document did not verify, or trust metadata is malformed."""


class FloatFree(dict[str, Any]):
    """A JSON object known to hold no float anywhere (see :func:`load_float_free`), so that
    :func:`canonical_bytes` need not walk it again every time it is signed into an answer.
    Treat it as immutable."""


def _float_refused(text: str) -> Any:
    raise TrustError(f"floats are not allowed in signed documents: {text}")


def load_float_free(text: str) -> FloatFree:
    """Parse a JSON object (a stored signed document), refusing floats, NaN and Infinity."""
    value = json.loads(text, parse_float=_float_refused, parse_constant=_float_refused)
    if not isinstance(value, dict):
        raise TrustError("expected a JSON object")
    return FloatFree(value)


# orjson writes what ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
# writes — the form the agent recomputes (client_agent/roots.py) — ten times faster (19 → 1.6 µs
# for a check answer). Times and dataclasses, which it would write and the standard library
# refuses, are refused (passed through to no default).
CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def canonical_bytes(signed: Mapping[str, Any]) -> bytes:
    """The exact bytes that get signed: sorted keys, no whitespace, UTF-8, no floats."""
    _reject_floats(signed)
    try:
        return orjson.dumps(signed, option=CANONICAL)
    except TypeError:
        # What orjson does not write (integers past 64 bits, keys that are not strings, lone
        # surrogates, the types above): the standard library writes it or raises as before.
        return json.dumps(
            signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def _reject_floats(value: Any) -> None:
    # A loop with exact type checks first: this walks every check answer before it is signed.
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str or kind is int or item is None or kind is bool or kind is FloatFree:
            continue
        if kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif isinstance(item, float):
            raise TrustError("floats are not allowed in signed documents")
        elif isinstance(item, Mapping):
            if not isinstance(item, FloatFree):
                pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def key_id(public: Ed25519PublicKey | str) -> str:
    """Hex SHA-256 of the raw public key."""
    raw = bytes.fromhex(public) if isinstance(public, str) else bytes.fromhex(public_hex(public))
    return hashlib.sha256(raw).hexdigest()


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` and whole seconds, as every signed document writes times."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime in a signed document")
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime writes such a year without leading zeros
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    # What strftime writes, in half the time (a check answer writes four to six times).
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 - the fastest formatting here
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
    )


def parse_iso(text: str) -> datetime:
    """Parse a time written by :func:`iso`."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise TrustError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise TrustError(f"time without a zone: {text!r}")
    return moment


class Signer(Protocol):
    """Something that signs bytes with one Ed25519 key."""

    @property
    def keyid(self) -> str: ...

    @property
    def public(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeySigner:
    """A signer holding an Ed25519 private key in memory."""

    private_key: Ed25519PrivateKey

    @functools.cached_property
    def public(self) -> str:
        return public_hex(self.private_key.public_key())

    @functools.cached_property
    def keyid(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def sign_document(signed: Mapping[str, Any], signers: Iterable[Signer]) -> dict[str, Any]:
    """Wrap ``signed`` as ``{"signed", "signatures"}`` with one signature per signer."""
    data = _typed_canonical_bytes(signed)
    return {"signed": dict(signed), "signatures": _signatures(data, signers)}


def signed_document_bytes(signed: Mapping[str, Any], signers: Iterable[Signer]) -> bytes:
    """:func:`sign_document` as canonical JSON bytes, ready to send: the bytes of ``signed``
    are encoded once, for the signature and the answer alike."""
    data = _typed_canonical_bytes(signed)
    signatures = orjson.dumps(_signatures(data, signers), option=CANONICAL)
    return b'{"signatures":' + signatures + b',"signed":' + data + b"}"


def _typed_canonical_bytes(signed: Mapping[str, Any]) -> bytes:
    if "type" not in signed:
        raise TrustError("a signed document must carry its type")
    return canonical_bytes(signed)


def _signatures(data: bytes, signers: Iterable[Signer]) -> list[dict[str, str]]:
    return [{"keyid": s.keyid, "sig": s.sign(data).hex()} for s in signers]


@dataclass(frozen=True)
class Role:
    keyids: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Root:
    """Parsed root metadata: which keys may sign what, and until when."""

    version: int
    expires: datetime
    keys: Mapping[str, str]  # keyid -> public hex
    roles: Mapping[str, Role]
    document: Mapping[str, Any]

    def role(self, name: str) -> Role:
        try:
            return self.roles[name]
        except KeyError:
            raise TrustError(f"root version {self.version} has no {name!r} role") from None

    def check_fresh(self, now: datetime) -> None:
        """Refuse to trust this root at ``now`` once it has expired."""
        if now >= self.expires:
            raise TrustError(
                f"root version {self.version} expired at {iso(self.expires)}: "
                "write a new root with `vigor keys write-root`"
            )

    def shared_online_keys(self) -> set[str]:
        """Key ids that both the ``release`` and the ``check`` role name (none by default)."""
        return set(self.role("release").keyids) & set(self.role("check").keyids)


def count_valid_signatures(
    document: Mapping[str, Any], keys: Mapping[str, str], keyids: Sequence[str]
) -> int:
    """How many distinct allowed keys validly signed ``document["signed"]``."""
    signed = document.get("signed")
    signatures = document.get("signatures")
    if not isinstance(signed, Mapping) or not isinstance(signatures, list):
        raise TrustError("not a signed document")
    data = canonical_bytes(signed)
    valid: set[str] = set()
    for entry in signatures:
        if not isinstance(entry, Mapping):
            continue
        kid, sig = entry.get("keyid"), entry.get("sig")
        if not isinstance(kid, str) or not isinstance(sig, str):
            continue
        if kid not in keyids or kid in valid or kid not in keys:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[kid])).verify(
                bytes.fromhex(sig), data
            )
        except (InvalidSignature, ValueError):
            continue
        valid.add(kid)
    return len(valid)


def verify_role(
    document: Mapping[str, Any],
    root: Root,
    role: str,
    expected_type: str,
    now: datetime | None = None,
) -> None:
    """Raise ``TrustError`` unless ``document`` is of ``expected_type`` and meets the role's
    threshold, and (``now`` given) ``root`` has not expired."""
    signed = document.get("signed")
    if not isinstance(signed, Mapping) or signed.get("type") != expected_type:
        raise TrustError(f"expected a signed {expected_type!r} document")
    if now is not None:
        root.check_fresh(now)
    spec = root.role(role)
    if count_valid_signatures(document, root.keys, spec.keyids) < spec.threshold:
        raise TrustError(f"{expected_type} document is not signed by the {role} role's threshold")


def parse_root(document: Mapping[str, Any]) -> Root:
    """Parse root metadata (structure only; signatures are checked by :func:`verify_root`)."""
    signed = document.get("signed")
    if not isinstance(signed, Mapping) or signed.get("type") != "root":
        raise TrustError("not root metadata")
    try:
        keys = {kid: spec["public"] for kid, spec in signed["keys"].items()}
        for kid, spec in signed["keys"].items():
            if spec["scheme"] != SCHEME:
                raise TrustError(f"key {kid} has the unknown scheme {spec['scheme']!r}")
            if key_id(spec["public"]) != kid:
                raise TrustError(f"key id {kid} does not match its public key")
        roles = {
            name: Role(tuple(spec["keyids"]), _whole(spec["threshold"], "threshold"))
            for name, spec in signed["roles"].items()
        }
        version = signed["version"]
        expires = parse_iso(signed["expires"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise TrustError(f"malformed root metadata: {exc}") from None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TrustError("root version must be a positive integer")
    for name in ROLES:
        if name not in roles:
            raise TrustError(f"root metadata lacks the {name!r} role")
    for name, spec in roles.items():
        if spec.threshold < 1 or spec.threshold > len(set(spec.keyids)):
            raise TrustError(f"role {name!r} has an impossible threshold")
    return Root(version, expires, keys, roles, document)


def _whole(value: Any, what: str) -> int:
    # bool is an int in Python; a root saying `true` for a count is malformed.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TrustError(f"{what} must be an integer")
    return value


def verify_root(document: Mapping[str, Any], trusted: Root | None) -> Root:
    """Verify root metadata against the previous trusted root (or itself for version 1).

    Root N+1 must carry the threshold of root N's root role and of its own root role.
    """
    new = parse_root(document)
    if trusted is not None:
        if new.version != trusted.version + 1:
            raise TrustError(f"expected root version {trusted.version + 1}, got {new.version}")
        old_spec = trusted.role("root")
        if count_valid_signatures(document, trusted.keys, old_spec.keyids) < old_spec.threshold:
            raise TrustError(f"root {new.version} is not signed by root {trusted.version}'s keys")
    own = new.role("root")
    if count_valid_signatures(document, new.keys, own.keyids) < own.threshold:
        raise TrustError(f"root {new.version} is not signed by its own root keys")
    return new


def build_root(
    version: int,
    expires: datetime,
    root_keys: Sequence[str],
    release_keys: Sequence[str],
    check_keys: Sequence[str],
    root_threshold: int = 1,
) -> dict[str, Any]:
    """The ``signed`` part of root metadata from public keys in hex."""
    all_keys = {*root_keys, *release_keys, *check_keys}
    return {
        "type": "root",
        "version": version,
        "expires": iso(expires),
        "keys": {key_id(pub): {"scheme": SCHEME, "public": pub} for pub in sorted(all_keys)},
        "roles": {
            "root": {"keyids": sorted(key_id(k) for k in root_keys), "threshold": root_threshold},
            "release": {"keyids": sorted(key_id(k) for k in release_keys), "threshold": 1},
            "check": {"keyids": sorted(key_id(k) for k in check_keys), "threshold": 1},
        },
    }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
