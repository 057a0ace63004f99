"""Signed documents and the root chain: what verifies and every way it must not."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from client_agent.roots import trust_initial_root
from server.domain.trust import (
    FloatFree,
    KeySigner,
    TrustError,
    build_root,
    canonical_bytes,
    iso,
    key_id,
    load_float_free,
    parse_iso,
    parse_root,
    sha256_hex,
    sign_document,
    signed_document_bytes,
    verify_role,
    verify_root,
)

FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


def signer() -> KeySigner:
    return KeySigner(Ed25519PrivateKey.generate())


CHECK = signer()


def make_root(
    version: int,
    root_signers: list[KeySigner],
    release: KeySigner,
    sign_with: list[KeySigner],
    threshold: int = 1,
    check: KeySigner | None = None,
) -> dict:
    signed = build_root(
        version,
        FUTURE,
        [s.public for s in root_signers],
        [release.public],
        [(check or CHECK).public],
        root_threshold=threshold,
    )
    return sign_document(signed, sign_with)


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": "é", "type": "x"}) == '{"a":"é","b":1,"type":"x"}'.encode()


# What the agent computes (client_agent/roots.py) and the server wrote before orjson.
def standard_library(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),  # past 64 bits; lone surrogates
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=6) | st.sampled_from(["é", "\uffff", "😀", "Z", "a"]), JSON_VALUES
    )
)
def test_canonical_bytes_are_what_the_standard_library_writes(document: dict[str, Any]) -> None:
    try:
        expected = standard_library(document)
    except UnicodeEncodeError:  # a lone surrogate: refused, as before
        with pytest.raises(UnicodeEncodeError):
            canonical_bytes(document)
        return
    assert canonical_bytes(document) == expected
    assert canonical_bytes(FloatFree(document)) == expected


def test_what_orjson_alone_would_write_differently_is_written_as_before() -> None:
    for document in ({"n": 2**64}, {"n": -(2**63) - 1}, {"m": {1: "a", 2: "b"}}):
        assert canonical_bytes(document) == standard_library(document)
    for refused in (datetime(2026, 1, 1, tzinfo=UTC), Signed(1)):
        with pytest.raises(TypeError):
            canonical_bytes({"type": "x", "value": refused})


@dataclass
class Signed:
    n: int


class Point(NamedTuple):
    x: int
    y: float


@pytest.mark.parametrize(
    "value",
    [
        [1.5],
        {"deep": [{"deeper": (2.5,)}]},
        float("nan"),
        [True, None, "1.5", 2e9],
        [1.5, "text after it"],
        OrderedDict(size=1.5),
        Point(1, 2.5),
    ],
    ids=[
        "list",
        "nested",
        "nan",
        "among-others",
        "before-a-string",
        "in-a-dict-subclass",
        "in-a-named-tuple",
    ],
)
def test_floats_are_refused(value: object) -> None:
    with pytest.raises(TrustError, match="floats"):
        canonical_bytes({"type": "x", "n": value})


def test_stored_documents_with_floats_are_refused_when_loaded() -> None:
    for text in ('{"size": 1.5}', '{"a": {"b": [1e3]}}', '{"x": NaN}', '{"x": Infinity}'):
        with pytest.raises(TrustError):
            load_float_free(text)
    with pytest.raises(TrustError, match="expected a JSON object"):
        load_float_free("[1, 2]")
    assert load_float_free('{"b": [1, "2.5"], "a": null}') == {"b": [1, "2.5"], "a": None}


def test_a_loaded_document_signs_into_the_same_bytes_as_a_plain_one() -> None:
    text = '{"type": "release", "version": "1.2.0", "size": 12, "notes": "caf\u00e9 \u2028"}'
    loaded = load_float_free(text)
    assert canonical_bytes({"m": loaded, "n": 1}) == canonical_bytes(
        {"m": json.loads(text), "n": 1}
    )


def test_signed_document_bytes_are_the_canonical_signed_document() -> None:
    key = signer()
    signed = {
        "type": "check",
        "nonce": "ab" * 8,
        "note": "ünïcode",
        "manifest": load_float_free("{}"),
    }
    data = signed_document_bytes(signed, [key])
    assert data == canonical_bytes(json.loads(data)), "sorted, compact, UTF-8 as a whole"
    document = json.loads(data)
    assert document == sign_document(signed, [key])
    (signature,) = document["signatures"]
    assert signature["keyid"] == key.keyid
    key.private_key.public_key().verify(bytes.fromhex(signature["sig"]), canonical_bytes(signed))
    with pytest.raises(TrustError):
        signed_document_bytes({"nonce": "x"}, [key])  # a document without a type


def test_key_id_is_sha256_of_raw_public_key() -> None:
    s = signer()
    assert s.keyid == hashlib.sha256(bytes.fromhex(s.public)).hexdigest() == key_id(s.public)
    assert key_id(s.private_key.public_key()) == s.keyid, "from the key itself, too"


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_iso_writes_utc_with_a_z_and_refuses_a_naive_time(machine_in_new_york: None) -> None:
    berlin = datetime(2026, 11, 25, 6, 0, 30, 999, tzinfo=ZoneInfo("Europe/Berlin"))
    assert iso(berlin) == "2026-11-25T05:00:30Z", "UTC, not this machine's zone"
    with pytest.raises(ValueError, match="naive"):
        iso(datetime(2026, 11, 25, 6))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=ZoneInfo("Pacific/Kiritimati")),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(999, 1, 1, 0, 0, 0, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
    ids=["utc", "another-year-in-utc", "max-year", "three-digit-year", "year-one"],
)
def test_iso_writes_what_strftime_writes(moment: datetime) -> None:
    assert iso(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T05:00:00Z", datetime(2026, 11, 25, 5, tzinfo=UTC)),
        ("2026-11-25T06:00:00+01:00", datetime(2026, 11, 25, 5, tzinfo=UTC)),
        ("2026-11-25T05:00:00", None),
        ("2026-11-25T05:00:00z", None),
        ("yesterday", None),
    ],
    ids=["utc", "offset", "naive", "lowercase-z", "not-a-time"],
)
def test_parse_iso(text: str, expected: datetime | None) -> None:
    if expected is None:
        with pytest.raises(TrustError):
            parse_iso(text)
    else:
        assert parse_iso(text) == expected


def test_root_v1_verifies_by_its_own_keys_and_release_docs_by_release_role() -> None:
    root_key, release = signer(), signer()
    root = verify_root(make_root(1, [root_key], release, [root_key]), None)
    manifest = sign_document({"type": "release", "version": "1.0"}, [release])
    verify_role(manifest, root, "release", "release")
    verify_role(sign_document({"type": "check"}, [CHECK]), root, "check", "check")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda d, r, o: d["signed"].update(version="9.9"), id="content-changed"),
        pytest.param(lambda d, r, o: d.update(signatures=[]), id="no-signature"),
        pytest.param(
            lambda d, r, o: d.update(signatures=sign_document(d["signed"], [o])["signatures"]),
            id="key-root-does-not-name",
        ),
        pytest.param(lambda d, r, o: d["signatures"][0].update(sig="00" * 64), id="bad-signature"),
        pytest.param(lambda d, r, o: d["signatures"][0].update(sig="zz"), id="garbage-signature"),
        pytest.param(lambda d, r, o: d["signed"].update(type="check"), id="wrong-type"),
        pytest.param(lambda d, r, o: d.pop("signatures"), id="signatures-missing"),
        pytest.param(lambda d, r, o: d.update(signatures="sig"), id="signatures-not-a-list"),
    ],
)
def test_release_document_refusals(tamper) -> None:  # type: ignore[no-untyped-def]
    root_key, release, other = signer(), signer(), signer()
    root = verify_root(make_root(1, [root_key], release, [root_key]), None)
    manifest = sign_document({"type": "release", "version": "1.0"}, [release])
    tamper(manifest, root, other)
    with pytest.raises(TrustError):
        verify_role(manifest, root, "release", "release")


def test_root_key_cannot_sign_releases() -> None:
    root_key, release = signer(), signer()
    root = verify_root(make_root(1, [root_key], release, [root_key]), None)
    with pytest.raises(TrustError):
        verify_role(sign_document({"type": "release"}, [root_key]), root, "release", "release")


def test_rotation_needs_old_and_new_root_keys() -> None:
    old, new, release = signer(), signer(), signer()
    v1 = verify_root(make_root(1, [old], release, [old]), None)
    assert verify_root(make_root(2, [new], release, [old, new]), v1).version == 2
    with pytest.raises(TrustError, match="root 1"):
        verify_root(make_root(2, [new], release, [new]), v1)
    with pytest.raises(TrustError, match="its own"):
        verify_root(make_root(2, [new], release, [old]), v1)
    with pytest.raises(TrustError, match="expected root version 2"):
        verify_root(make_root(3, [new], release, [old, new]), v1)


def test_threshold_counts_distinct_keys_once() -> None:
    a, b, release = signer(), signer(), signer()
    doc = make_root(1, [a, b], release, [a], threshold=2)
    doc["signatures"].append(dict(doc["signatures"][0]))  # the same key twice
    with pytest.raises(TrustError):
        verify_root(doc, None)
    assert (
        verify_root(make_root(1, [a, b], release, [a, b], threshold=2), None).role("root").threshold
        == 2
    )


def test_impossible_threshold_is_malformed() -> None:
    a, release = signer(), signer()
    with pytest.raises(TrustError, match="threshold"):
        parse_root(make_root(1, [a], release, [a], threshold=2))


def test_mismatched_key_id_is_malformed() -> None:
    a, release = signer(), signer()
    doc = make_root(1, [a], release, [a])
    doc["signed"]["keys"][a.keyid]["public"] = release.public
    with pytest.raises(TrustError, match="does not match"):
        parse_root(doc)


def test_each_role_verifies_only_with_its_own_keys() -> None:
    a, release = signer(), signer()
    root = verify_root(make_root(1, [a], release, [a]), None)
    with pytest.raises(TrustError, match="check role's threshold"):
        verify_role(sign_document({"type": "check"}, [release]), root, "check", "check")
    with pytest.raises(TrustError, match="release role's threshold"):
        verify_role(sign_document({"type": "release"}, [CHECK]), root, "release", "release")
    with pytest.raises(TrustError, match="release role's threshold"):
        verify_role(sign_document({"type": "patches"}, [CHECK]), root, "release", "patches")
    with pytest.raises(TrustError, match="check role's threshold"):
        verify_role(sign_document({"type": "bundle"}, [release]), root, "check", "bundle")


def test_a_root_of_an_older_instance_naming_one_key_for_both_roles_still_verifies() -> None:
    a, online = signer(), signer()
    root = verify_root(make_root(1, [a], online, [a], check=online), None)
    assert root.shared_online_keys() == {online.keyid}
    verify_role(sign_document({"type": "check"}, [online]), root, "check", "check")
    verify_role(sign_document({"type": "release"}, [online]), root, "release", "release")


def test_a_root_made_with_separate_keys_shares_none() -> None:
    a, release = signer(), signer()
    assert verify_root(make_root(1, [a], release, [a]), None).shared_online_keys() == set()


def test_an_expired_root_verifies_nothing_once_the_time_is_given() -> None:
    a, release = signer(), signer()
    root = verify_root(make_root(1, [a], release, [a]), None)
    manifest = sign_document({"type": "release"}, [release])
    verify_role(manifest, root, "release", "release", FUTURE - timedelta(seconds=1))
    for now in (FUTURE, FUTURE + timedelta(days=1)):
        with pytest.raises(TrustError, match="root version 1 expired at 2030-01-01T00:00:00Z"):
            verify_role(manifest, root, "release", "release", now)
    verify_role(manifest, root, "release", "release")  # no time: the caller checks elsewhere


def test_the_type_is_checked_before_anything_else_even_with_an_expired_root() -> None:
    a, release = signer(), signer()
    root = verify_root(make_root(1, [a], release, [a]), None)
    with pytest.raises(TrustError, match="expected a signed 'release' document"):
        verify_role(sign_document({"type": "check"}, [release]), root, "release", "release", FUTURE)


def test_a_well_signed_document_of_another_type_is_refused() -> None:
    root_key, release = signer(), signer()
    root = verify_root(make_root(1, [root_key], release, [root_key]), None)
    with pytest.raises(TrustError, match="expected a signed 'release' document"):
        verify_role(sign_document({"type": "check"}, [release]), root, "release", "release")


def test_junk_among_the_signatures_is_skipped_not_fatal() -> None:
    root_key, release = signer(), signer()
    signed = build_root(1, FUTURE, [root_key.public], [release.public], [CHECK.public])
    unlisted = "ab" * 32  # the release role names it, the root lists no such key
    signed["roles"]["release"]["keyids"].append(unlisted)
    root = verify_root(sign_document(signed, [root_key]), None)
    manifest = sign_document({"type": "release", "version": "1.0"}, [release])
    manifest["signatures"] = [
        "not an object",
        {"keyid": release.keyid, "sig": None},
        {"keyid": 7, "sig": "00"},
        {"keyid": unlisted, "sig": "00" * 64},
        {"keyid": release.keyid, "sig": "00" * 64},
        *manifest["signatures"],
    ]
    verify_role(manifest, root, "release", "release")


def test_a_check_role_of_its_own_keeps_release_keys_from_signing_checks() -> None:
    root_key, release, check = signer(), signer(), signer()
    signed = build_root(1, FUTURE, [root_key.public], [release.public], [check.public])
    root = verify_root(sign_document(signed, [root_key]), None)
    verify_role(sign_document({"type": "check"}, [check]), root, "check", "check")
    with pytest.raises(TrustError, match="check role's threshold"):
        verify_role(sign_document({"type": "check"}, [release]), root, "check", "check")


def test_a_root_built_by_the_server_is_trusted_by_the_agent() -> None:
    root_key, release, check = signer(), signer(), signer()
    signed = build_root(1, FUTURE, [root_key.public], [release.public], [check.public])
    agent_root = trust_initial_root(sign_document(signed, [root_key]))
    assert agent_root.role("release").keyids == {release.keyid}
    assert agent_root.role("check").keyids == {check.keyid}
    assert agent_root.expires == FUTURE


def test_a_verified_root_says_until_when_and_keeps_its_document() -> None:
    root_key, release = signer(), signer()
    document = make_root(1, [root_key], release, [root_key])
    root = verify_root(document, None)
    assert root.expires == FUTURE
    assert root.document == document


def _resigned(change: Any) -> dict[str, Any]:
    root_key, release = signer(), signer()
    signed = build_root(1, FUTURE, [root_key.public], [release.public], [CHECK.public])
    change(signed)
    return sign_document(signed, [root_key])


MALFORMED_ROOTS = {
    "version-zero": (lambda s: s.update(version=0), "positive integer"),
    "version-not-an-integer": (lambda s: s.update(version="2"), "positive integer"),
    "without-a-release-role": (lambda s: s["roles"].pop("release"), "lacks the 'release' role"),
    "of-another-type": (lambda s: s.update(type="check"), "not root metadata"),
    "version-true": (lambda s: s.update(version=True), "positive integer"),
    "without-a-check-role": (lambda s: s["roles"].pop("check"), "lacks the 'check' role"),
    "without-a-root-role": (lambda s: s["roles"].pop("root"), "lacks the 'root' role"),
    "release-threshold-zero": (
        lambda s: s["roles"]["release"].update(threshold=0),
        "role 'release' has an impossible threshold",
    ),
    "check-threshold-zero": (
        lambda s: s["roles"]["check"].update(threshold=0),
        "role 'check' has an impossible threshold",
    ),
    "root-threshold-negative": (
        lambda s: s["roles"]["root"].update(threshold=-1),
        "role 'root' has an impossible threshold",
    ),
    "threshold-true": (
        lambda s: s["roles"]["check"].update(threshold=True),
        "threshold must be an integer",
    ),
    "threshold-a-string": (
        lambda s: s["roles"]["check"].update(threshold="1"),
        "threshold must be an integer",
    ),
    "threshold-missing": (lambda s: s["roles"]["check"].pop("threshold"), "malformed root"),
    "key-of-an-unknown-scheme": (
        lambda s: [spec.update(scheme="rsa-pss") for spec in s["keys"].values()],
        "unknown scheme 'rsa-pss'",
    ),
    "key-without-a-scheme": (
        lambda s: [spec.pop("scheme") for spec in s["keys"].values()],
        "malformed root",
    ),
    "expiry-not-a-time": (lambda s: s.update(expires="soon"), "not an ISO-8601 time"),
}


@pytest.mark.parametrize(
    ("change", "message"), MALFORMED_ROOTS.values(), ids=MALFORMED_ROOTS.keys()
)
def test_malformed_roots_are_refused(change: Any, message: str) -> None:
    with pytest.raises(TrustError, match=message):
        verify_root(_resigned(change), None)


def test_a_document_with_non_ascii_text_signs_and_verifies_on_both_sides() -> None:
    # Every Spanish answer: the signature covers UTF-8 bytes, which both implementations encode
    # alike; an ASCII-escaped encoding of the same text would be other bytes.
    from client_agent.roots import verify_role as agent_verify_role

    root_key, release = signer(), signer()
    document = make_root(1, [root_key], release, [root_key])
    root = verify_root(document, None)
    message = {"type": "check", "message": "El mantenimiento terminó; renuévelo — año 2027."}
    signed = sign_document(message, [CHECK])
    verify_role(signed, root, "check", "check")
    assert agent_verify_role(signed, trust_initial_root(document), "check", "check") == message
    wire = json.loads(signed_document_bytes(message, [CHECK]))
    verify_role(wire, root, "check", "check")
    escaped = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
    forged = {
        "signed": message,
        "signatures": [{"keyid": CHECK.keyid, "sig": CHECK.sign(escaped).hex()}],
    }
    with pytest.raises(TrustError):
        verify_role(forged, root, "check", "check")
