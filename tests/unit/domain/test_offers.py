"""What a check offers (DESIGN.md "What the check offers", rules 5 and 7): named-case tables for
the offer, the renewal prompt and ``apply_by``, and focused tests for notices and rollout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from packaging.version import Version

from server.domain.coverage import maintenance_status
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.offers import (
    ReleaseIndex,
    apply_by,
    in_rollout,
    renewal_summary,
    rollout_bucket,
    select_offer,
)
from tests.common.facts import (
    PLATFORM,
    customization,
    license_of,
    maintenance,
    policy,
    release,
    security,
    utc,
)

NOW = utc(2026, 6, 1)
AFTER = utc(2027, 6, 1)
Y2026 = maintenance("2026-01-01", "2026-12-31")
ACTIVE = license_of(Y2026)
LAPSED = license_of(Y2026)  # the same contract, judged after 2026
DEFAULT = policy()
INSTALLATION = "installation-000001"

R10 = release("1.0", utc(2026, 1, 5))
R11 = release("1.1", utc(2026, 2, 5))
R12 = release("1.2", utc(2026, 3, 5))


def installation_in(release_id: int, percent: int, *, inside: bool) -> str:
    """An installation id whose bucket for ``release_id`` is inside (or outside) ``percent``."""
    for i in range(10_000):
        candidate = f"installation-{i:06d}"
        if (rollout_bucket(candidate, release_id) < percent) is inside:
            return candidate
    raise AssertionError("no such installation")


# --------------------------------------------------------------------------- the offer


@dataclass(frozen=True)
class OfferCase:
    releases: tuple[ReleaseFacts, ...]
    installed: str
    offered: str | None
    license: LicenseFacts = ACTIVE
    channel: str = "stable"
    platform: str = PLATFORM
    installation: str = INSTALLATION
    now: datetime = NOW
    policy: ProductPolicy = DEFAULT
    installed_line: str | None = None


HALF = release("1.2", utc(2026, 3, 5), rollout=50, release_id=4242)
BETA = release("1.2b1", utc(2026, 3, 1), channel="beta")
PRIVATE = release("1.2+initech.1", utc(2026, 3, 6), channel="initech", customers={"initech"})
CUSTOMIZED = license_of(Y2026, customization("2026-01-01", "2026-12-31"))
STEPS = (
    release("1.0", utc(2026, 1, 5)),
    release("2.0", utc(2026, 2, 5)),
    release("3.0", utc(2026, 3, 5), min_from="2.0"),
)
LIFECYCLE = (
    release("3.8", utc(2025, 1, 5), line_status="end-of-life"),
    release("3.9", utc(2026, 1, 5), line_status="end-of-life"),
    release("4.1", utc(2026, 2, 5), line_status="security-only"),
    security("4.1.1", utc(2026, 3, 5), line_status="security-only"),
    release("4.2", utc(2026, 4, 5), line_status="security-only"),
    release("5.0", utc(2026, 5, 5), kind="version"),
)

OFFER_CASES: dict[str, OfferCase] = {
    # the highest newer release; never a downgrade
    "highest-newer-release": OfferCase((R10, R11, R12), "1.0", "1.2"),
    "nothing-newer": OfferCase((R10, R11, R12), "1.2", None),
    "installed-equal-as-1.2.0": OfferCase((R10, R11, R12), "1.2.0", None),
    "never-a-downgrade": OfferCase((R10, R11, R12), "9.0", None),
    "installed-unknown-between-releases": OfferCase((R10, R11, R12), "1.1.5", "1.2"),
    # channels
    "stable-does-not-see-beta": OfferCase((R11, BETA), "1.0", "1.1"),
    "beta-sees-beta": OfferCase((R11, BETA), "1.0", "1.2b1", channel="beta"),
    "beta-sees-newer-stable": OfferCase((BETA, R12), "1.0", "1.2", channel="beta"),
    "private-channel-sees-its-build": OfferCase(
        (R11, PRIVATE), "1.0", "1.2+initech.1", license=CUSTOMIZED, channel="initech"
    ),
    "private-channel-sees-stable": OfferCase(
        (R11,), "1.0", "1.1", license=CUSTOMIZED, channel="initech"
    ),
    "stable-does-not-see-private": OfferCase((R11, PRIVATE), "1.0", "1.1", license=CUSTOMIZED),
    "beta-does-not-see-private": OfferCase(
        (R11, PRIVATE), "1.0", "1.1", license=CUSTOMIZED, channel="beta"
    ),
    # platforms
    "platform-missing-falls-back": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), platforms={"windows-x86_64"})), "1.0", "1.1"
    ),
    "platform-any-serves-all": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), platforms={"any"})), "1.0", "1.2"
    ),
    "platform-own-artifact": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), platforms={"windows-x86_64"})),
        "1.0",
        "1.2",
        platform="windows-x86_64",
    ),
    # min_from: stepping stones
    "min-from-stepping-stone": OfferCase(STEPS, "1.0", "2.0"),
    "min-from-reached-exactly": OfferCase(STEPS, "2.0", "3.0"),
    "min-from-passed": OfferCase(STEPS, "2.1", "3.0"),
    "min-from-chain-first-step": OfferCase(
        (
            release("2.0", utc(2026, 2, 5)),
            release("2.5", utc(2026, 3, 5), min_from="2.0"),
            release("3.0", utc(2026, 4, 5), min_from="2.5"),
        ),
        "1.0",
        "2.0",
    ),
    "min-from-chain-second-step": OfferCase(
        (
            release("2.0", utc(2026, 2, 5)),
            release("2.5", utc(2026, 3, 5), min_from="2.0"),
            release("3.0", utc(2026, 4, 5), min_from="2.5"),
        ),
        "2.0",
        "2.5",
    ),
    "min-from-stone-yanked-nothing": OfferCase(
        (release("2.0", utc(2026, 2, 5), yanked=True), STEPS[2]), "1.0", None
    ),
    # staged rollout
    "rollout-100-everyone": OfferCase((R11, R12), "1.0", "1.2"),
    "rollout-0-halted-falls-back": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), rollout=0)), "1.0", "1.1"
    ),
    "rollout-50-bucket-inside": OfferCase(
        (R11, HALF), "1.0", "1.2", installation=installation_in(4242, 50, inside=True)
    ),
    "rollout-50-bucket-outside": OfferCase(
        (R11, HALF), "1.0", "1.1", installation=installation_in(4242, 50, inside=False)
    ),
    "critical-security-respects-a-halt": OfferCase(
        (R11, security("1.2", utc(2026, 3, 5), "critical", rollout=0)), "1.0", "1.1"
    ),
    "critical-security-bypasses-staging": OfferCase(
        (R11, security("1.2", utc(2026, 3, 5), "critical", rollout=10, release_id=77)),
        "1.0",
        "1.2",
        installation=installation_in(77, 10, inside=False),
    ),
    "serious-security-respects-halt": OfferCase(
        (R11, security("1.2", utc(2026, 3, 5), "serious", rollout=0)), "1.0", "1.1"
    ),
    "critical-update-is-not-a-security-revision": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), severity="critical", rollout=0)), "1.0", "1.1"
    ),
    # rule 5: yanked
    "yanked-skipped-for-lower": OfferCase(
        (R11, release("1.2", utc(2026, 3, 5), yanked=True)), "1.0", "1.1"
    ),
    "only-yanked-nothing": OfferCase((release("1.2", utc(2026, 3, 5), yanked=True),), "1.0", None),
    # entitlement
    "lapsed-gets-newest-entitled": OfferCase(
        (release("1.1", utc(2026, 5, 1)), release("1.2", utc(2027, 2, 1))),
        "1.0",
        "1.1",
        license=LAPSED,
        now=AFTER,
    ),
    "lapsed-nothing-entitled-newer": OfferCase(
        (release("1.2", utc(2027, 2, 1)),), "1.1", None, license=LAPSED, now=AFTER
    ),
    "revoke-lapsed-nothing": OfferCase(
        (R11,), "1.0", None, license=LAPSED, now=AFTER, policy=policy(lapse_policy="revoke")
    ),
    "grace-gets-release-after-end": OfferCase(
        (release("1.2", utc(2027, 1, 3)),),
        "1.0",
        "1.2",
        now=utc(2027, 1, 10),
        policy=policy(grace_days=14),
    ),
    "renewed-gets-everything": OfferCase(
        (release("1.2", utc(2027, 2, 1)),),
        "1.0",
        "1.2",
        license=license_of(Y2026, maintenance("2027-06-01", "2028-05-31")),
        now=AFTER,
    ),
    "suspended-nothing": OfferCase(
        (R11,), "1.0", None, license=license_of(Y2026, status="suspended")
    ),
    "revoked-nothing": OfferCase((R11,), "1.0", None, license=license_of(Y2026, status="revoked")),
    "license-for-another-product-nothing": OfferCase(
        (R11,), "1.0", None, license=license_of(Y2026, product="other")
    ),
    "never-bought-nothing": OfferCase((R11,), "1.0", None, license=license_of()),
    "not-yet-published-skipped": OfferCase(
        (R11, release("1.2", NOW + timedelta(hours=1))), "1.0", "1.1"
    ),
    "custom-build-of-another-customer-skipped": OfferCase(
        (R11, release("1.2+globex.1", utc(2026, 3, 5), customers={"globex"})),
        "1.0",
        "1.1",
        license=CUSTOMIZED,
    ),
    "carve-out-security-reaches-lapsed": OfferCase(
        (release("1.9", utc(2026, 5, 1)), security("1.9.1", utc(2027, 2, 1))),
        "1.9",
        "1.9.1",
        license=LAPSED,
        now=AFTER,
        policy=policy(security_carveout_months=3),
    ),
    "carve-out-not-for-an-unowned-line": OfferCase(
        (release("1.9", utc(2026, 5, 1)), security("2.0.1", utc(2027, 2, 1))),
        "1.9",
        None,
        license=LAPSED,
        now=AFTER,
        policy=policy(security_carveout_months=3),
    ),
    # rule 7: line lifecycle
    "end-of-life-line-never-offered": OfferCase(LIFECYCLE[:2], "3.8", None),
    "security-only-offers-security-revision": OfferCase(LIFECYCLE[2:4], "4.0", "4.1.1"),
    "security-only-skips-updates": OfferCase(LIFECYCLE[2:3], "4.0", None),
    "security-only-update-above-security": OfferCase(LIFECYCLE[2:5], "4.0", "4.1.1"),
    "security-only-install-still-gets-supported": OfferCase(LIFECYCLE, "4.1", "5.0"),
    "end-of-life-way-out-newest": OfferCase(LIFECYCLE, "3.8", "5.0"),
    "end-of-life-way-out-through-security-only-update": OfferCase(
        (*LIFECYCLE[:5], release("5.0", utc(2027, 2, 1), kind="version")),
        "3.8",
        "4.2",
        license=LAPSED,
        now=AFTER,
    ),
    "end-of-life-way-out-respects-min-from": OfferCase(
        (
            LIFECYCLE[0],
            release("4.0", utc(2026, 2, 1)),
            release("5.0", utc(2026, 3, 1), min_from="4.0"),
        ),
        "3.8",
        "4.0",
    ),
    "end-of-life-line-from-major-version": OfferCase(LIFECYCLE[:5], "3.7", "4.2"),
    "installed-line-given-by-the-agent": OfferCase(
        (LIFECYCLE[1], LIFECYCLE[2]), "4.0", "4.1", installed_line="3.x"
    ),
    "installed-line-worked-out-otherwise": OfferCase((LIFECYCLE[1], LIFECYCLE[2]), "4.0", None),
    # the security carve-out after a lapse (rule 6)
    "carve-out-of-one-month-offers-the-revision": OfferCase(
        (R10, security("1.0.1", utc(2027, 1, 15))),
        "1.0",
        "1.0.1",
        license=LAPSED,
        now=AFTER,
        policy=policy(security_carveout_months=1),
    ),
    "carve-out-for-a-line-owned-through-a-customized-build": OfferCase(
        (
            release("1.5+initech.1", utc(2026, 5, 1), customers={"initech"}),
            security("1.5.1", utc(2027, 1, 15)),
        ),
        "1.5+initech.1",
        "1.5.1",
        license=CUSTOMIZED,
        now=AFTER,
        policy=policy(security_carveout_months=3),
    ),
}


@pytest.mark.parametrize("case", OFFER_CASES.values(), ids=OFFER_CASES.keys())
def test_select_offer(case: OfferCase) -> None:
    result = select_offer(
        case.license,
        case.policy,
        ReleaseIndex.of(case.releases),
        installed_version=Version(case.installed),
        installed_line=case.installed_line,
        platform=case.platform,
        channel=case.channel,
        installation_id=case.installation,
        now=case.now,
    )
    offered = str(result.offer.release.version) if result.offer else None
    assert offered == case.offered
    if result.offer is not None:
        assert result.offer.release.version > Version(case.installed), "never a downgrade"


def test_the_offer_table_is_large_enough() -> None:
    assert len(OFFER_CASES) >= 50


# --------------------------------------------------------------------------- notices


def offer_for(
    releases: tuple[ReleaseFacts, ...],
    installed: str,
    *,
    lic: LicenseFacts = ACTIVE,
    now: datetime = NOW,
) -> tuple[str | None, tuple[dict[str, object], ...]]:
    result = select_offer(
        lic,
        DEFAULT,
        releases,
        installed_version=Version(installed),
        platform=PLATFORM,
        channel="stable",
        installation_id=INSTALLATION,
        now=now,
    )
    return (str(result.offer.release.version) if result.offer else None), result.notices


def test_end_of_life_notice_names_the_way_out() -> None:
    offered, notices = offer_for(LIFECYCLE, "3.9")
    assert offered == "5.0"
    assert [n["code"] for n in notices] == ["end_of_life"]
    assert notices[0]["line"] == "3.x"
    assert (
        str(notices[0]["message"]) == "3.x is no longer supported. Update to 5.0 to stay supported."
    )


def test_the_end_of_life_line_is_the_installed_releases_own() -> None:
    legacy = release("2024.1", utc(2025, 1, 5), line="legacy", line_status="end-of-life")
    offered, notices = offer_for((legacy, release("2024.2", utc(2026, 1, 5))), "2024.1")
    assert offered == "2024.2"
    assert [(n["code"], n["line"]) for n in notices] == [("end_of_life", "legacy")]


def test_end_of_life_without_an_entitled_way_out_says_renew() -> None:
    releases = (LIFECYCLE[1], release("5.0", utc(2027, 4, 5)))
    offered, notices = offer_for(releases, "3.9", lic=LAPSED, now=AFTER)
    assert offered is None
    assert notices[0]["code"] == "end_of_life"
    assert str(notices[0]["message"]) == (
        "3.x is no longer supported. Renew maintenance to move to a supported version."
    )


def test_yanked_notice_carries_reason_and_recommendation() -> None:
    yanked = release(
        "1.1",
        utc(2026, 2, 5),
        yanked=True,
        yank_reason="corrupts invoices",
        recommended_version="1.1.1",
    )
    offered, notices = offer_for((R10, yanked, release("1.1.1", utc(2026, 2, 6))), "1.1")
    assert offered == "1.1.1"
    assert [{**n, "message": str(n["message"])} for n in notices] == [
        {
            "code": "yanked",
            "message": "Version 1.1 was withdrawn: corrupts invoices. Move to 1.1.1.",
            "reason": "corrupts invoices",
            "recommended_version": "1.1.1",
        },
    ]
    assert notices[0]["message"].in_language("es") == (
        "La versión 1.1 fue retirada: corrupts invoices. Pase a la 1.1.1."
    )


def test_yanked_notice_without_recommendation_and_never_a_downgrade() -> None:
    yanked = release("1.1", utc(2026, 2, 5), yanked=True, yank_reason="")
    offered, notices = offer_for((R10, yanked), "1.1")
    assert offered is None, "the older release is not offered back"
    assert notices[0]["recommended_version"] is None
    assert str(notices[0]["message"]) == "Version 1.1 was withdrawn: no reason given."


def test_both_notices_at_once() -> None:
    yanked_eol = release("3.9", utc(2026, 1, 5), line_status="end-of-life", yanked=True)
    _, notices = offer_for((yanked_eol, LIFECYCLE[-1]), "3.9")
    assert [n["code"] for n in notices] == ["end_of_life", "yanked"]


def test_no_notices_on_a_supported_release() -> None:
    assert offer_for((R10, R11), "1.0") == ("1.1", ())


def test_offer_result_carries_the_status_it_used() -> None:
    result = select_offer(
        LAPSED,
        DEFAULT,
        [R11],
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        installation_id=INSTALLATION,
        now=AFTER,
    )
    assert result.status == maintenance_status(LAPSED, DEFAULT, AFTER)


def test_a_plain_list_and_an_index_give_the_same_answer() -> None:
    for case in OFFER_CASES.values():
        from_list, from_index = (
            select_offer(
                case.license,
                case.policy,
                releases,
                installed_version=Version(case.installed),
                installed_line=case.installed_line,
                platform=case.platform,
                channel=case.channel,
                installation_id=case.installation,
                now=case.now,
            )
            for releases in (list(case.releases), ReleaseIndex.of(case.releases))
        )
        assert from_list == from_index


# --------------------------------------------------------------------------- rollout


def test_bucket_is_sha256_of_installation_and_release_mod_100() -> None:
    digest = hashlib.sha256(b"installation-000001:42").digest()
    assert rollout_bucket("installation-000001", 42) == int.from_bytes(digest, "big") % 100


def test_bucket_is_deterministic_in_range_and_depends_on_the_release() -> None:
    ids = [f"installation-{i:06d}" for i in range(500)]
    first = [rollout_bucket(i, 1) for i in ids]
    assert first == [rollout_bucket(i, 1) for i in ids]
    assert all(0 <= b < 100 for b in first)
    assert first != [rollout_bucket(i, 2) for i in ids], "not always the same installations first"


@pytest.mark.parametrize("percent", [0, 10, 50, 90, 100])
def test_rollout_share_matches_the_percent(percent: int) -> None:
    staged = release("1.1", utc(2026, 2, 5), rollout=percent, release_id=9)
    hits = sum(in_rollout(staged, f"installation-{i:06d}") for i in range(2000))
    assert abs(hits / 2000 - percent / 100) < 0.04


@pytest.mark.parametrize("percent", [1, 37, 99])
def test_an_installation_is_in_when_its_bucket_is_below_the_percent(percent: int) -> None:
    staged = release("1.1", utc(2026, 2, 5), rollout=percent, release_id=77)
    buckets = {}
    for i in range(1000):
        installation = f"installation-{i:06d}"
        digest = hashlib.sha256(f"{installation}:77".encode()).digest()
        buckets[installation] = int.from_bytes(digest, "big") % 100
    assert {percent - 1, percent} <= set(buckets.values()), "both sides of the edge are tried"
    for installation, bucket in buckets.items():
        assert in_rollout(staged, installation) is (bucket < percent), installation


def test_only_a_critical_security_revision_skips_a_staged_rollout() -> None:
    outside = installation_in(88, 1, inside=False)
    assert in_rollout(
        security("1.1", utc(2026, 2, 5), "critical", rollout=1, release_id=88), outside
    )
    for not_critical_security in (
        security("1.1", utc(2026, 2, 5), "serious", rollout=1, release_id=88),
        release("1.1", utc(2026, 2, 5), severity="critical", rollout=1, release_id=88),
    ):
        assert not in_rollout(not_critical_security, outside)


def test_widening_a_rollout_keeps_everyone_already_in() -> None:
    ids = [f"installation-{i:06d}" for i in range(500)]
    narrow = release("1.1", utc(2026, 2, 5), rollout=20, release_id=5)
    wide = release("1.1", utc(2026, 2, 5), rollout=60, release_id=5)
    assert {i for i in ids if in_rollout(narrow, i)} <= {i for i in ids if in_rollout(wide, i)}


# --------------------------------------------------------------------------- apply_by


PUBLISHED = utc(2026, 5, 31, 20)
SOON = utc(2026, 5, 31, 21)

APPLY_BY_CASES: dict[str, tuple[ReleaseFacts, datetime, ProductPolicy, datetime | None]] = {
    "critical-8h": (security("1.1", PUBLISHED, "critical"), SOON, DEFAULT, utc(2026, 6, 1, 4)),
    "serious-24h": (security("1.1", PUBLISHED, "serious"), SOON, DEFAULT, utc(2026, 6, 1, 20)),
    "minor-72h": (security("1.1", PUBLISHED, "minor"), SOON, DEFAULT, utc(2026, 6, 3, 20)),
    "overdue-is-now": (security("1.1", utc(2026, 1, 1), "critical"), NOW, DEFAULT, NOW),
    "deadline-exactly-now": (
        security("1.1", PUBLISHED, "critical"),
        utc(2026, 6, 1, 4),
        DEFAULT,
        utc(2026, 6, 1, 4),
    ),
    "no-severity-whenever": (release("1.1", PUBLISHED), SOON, DEFAULT, None),
    "update-with-severity": (
        release("1.1", PUBLISHED, severity="minor"),
        SOON,
        DEFAULT,
        utc(2026, 6, 3, 20),
    ),
    "product-deadlines": (
        security("1.1", PUBLISHED, "critical"),
        SOON,
        policy(severity_deadlines={"critical": 2, "serious": 4, "minor": 6}),
        utc(2026, 5, 31, 22),
    ),
    "unknown-severity": (security("1.1", PUBLISHED, "cosmic"), SOON, DEFAULT, None),
}


@pytest.mark.parametrize(
    ("rel", "now", "product_policy", "expected"),
    APPLY_BY_CASES.values(),
    ids=APPLY_BY_CASES.keys(),
)
def test_apply_by(
    rel: ReleaseFacts, now: datetime, product_policy: ProductPolicy, expected: datetime | None
) -> None:
    assert apply_by(rel, product_policy, now) == expected


def test_the_offer_carries_apply_by() -> None:
    result = select_offer(
        ACTIVE,
        DEFAULT,
        [security("1.1", PUBLISHED, "critical")],
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        installation_id=INSTALLATION,
        now=SOON,
    )
    assert result.offer is not None and result.offer.apply_by == utc(2026, 6, 1, 4)


# --------------------------------------------------------------------------- renewal prompt

CATALOG = (
    release("1.1", utc(2026, 6, 1)),  # covered by 2026
    release("1.2", utc(2027, 2, 1)),
    security("1.2.1", utc(2027, 3, 1), "critical"),
    release("2.0", utc(2027, 4, 1), kind="version"),
    release("2.0.1", utc(2027, 5, 1), yanked=True),
    release("2.0+globex.1", utc(2027, 5, 2), customers={"globex"}),
    release("2.1b1", utc(2027, 5, 3), channel="beta"),
    release("2.0.2", utc(2027, 5, 4), platforms={"windows-x86_64"}),
    release("2.0.3", utc(2027, 7, 1)),  # not yet published at AFTER
)
LINES = (
    release("1.1", utc(2026, 6, 1)),
    release("3.9", utc(2027, 2, 1), line_status="end-of-life"),
    release("4.1", utc(2027, 2, 1), line_status="security-only"),
    security("4.1.1", utc(2027, 3, 1), line_status="security-only"),
)


@dataclass(frozen=True)
class RenewalCase:
    license: LicenseFacts
    installed: str
    now: datetime
    expected: tuple[str | None, int, int, int] | None  # newest, updates, security, versions
    message: str = ""  # the message, when the case is about it
    policy: ProductPolicy = DEFAULT
    channel: str = "stable"
    platform: str = PLATFORM
    releases: tuple[ReleaseFacts, ...] = field(default=CATALOG)
    installed_line: str | None = None


RENEWAL_CASES: dict[str, RenewalCase] = {
    "lapsed-counts-what-renewal-brings": RenewalCase(
        LAPSED,
        "1.1",
        AFTER,
        ("2.0", 1, 1, 1),
        "Renew maintenance to receive 3 newer releases, including 1 security revision; newest: 2.0.",
    ),
    "lapsed-only-newer-than-installed": RenewalCase(
        LAPSED,
        "1.2.1",
        AFTER,
        ("2.0", 0, 0, 1),
        "Renew maintenance to receive 1 newer release, including 0 security revisions; "
        "newest: 2.0.",
    ),
    "lapsed-misses-two-security-revisions": RenewalCase(
        LAPSED,
        "1.1",
        AFTER,
        ("1.2.2", 0, 2, 0),
        "Renew maintenance to receive 2 newer releases, including 2 security revisions; "
        "newest: 1.2.2.",
        releases=(
            release("1.1", utc(2026, 6, 1)),
            security("1.2.1", utc(2027, 3, 1)),
            security("1.2.2", utc(2027, 4, 1)),
        ),
    ),
    "lapsed-misses-a-release-published-the-instant-cover-ended": RenewalCase(
        LAPSED,
        "1.1",
        AFTER,
        ("1.2", 1, 0, 0),
        releases=(release("1.1", utc(2026, 6, 1)), release("1.2", utc(2027, 1, 1, 0))),
    ),
    "lapsed-with-renewal-booked-is-told-when-it-starts": RenewalCase(
        license_of(Y2026, maintenance("2027-07-01", "2028-06-30")),
        "1.1",
        AFTER,
        ("2.0", 1, 1, 1),
        "Your maintenance starts on 2027-07-01; it brings 3 newer releases, including "
        "1 security revision; newest: 2.0.",
    ),
    "lapsed-beta-channel-adds-beta": RenewalCase(
        LAPSED, "1.1", AFTER, ("2.1b1", 2, 1, 1), channel="beta"
    ),
    "lapsed-other-platform": RenewalCase(
        LAPSED, "1.1", AFTER, ("2.0.2", 1, 0, 0), platform="windows-x86_64"
    ),
    "lapsed-nothing-missing": RenewalCase(LAPSED, "2.0", AFTER, None),
    "never-bought-is-told-to-buy": RenewalCase(
        license_of(),
        "1.1",
        AFTER,
        ("2.0", 1, 1, 1),
        "Buy maintenance to receive 3 newer releases, including 1 security revision; newest: 2.0.",
    ),
    "never-bought-misses-old-releases-too": RenewalCase(
        license_of(), "1.0", AFTER, ("2.0", 2, 1, 1)
    ),
    "future-contract-is-told-when-it-starts": RenewalCase(
        license_of(maintenance("2027-07-01", "2028-06-30")),
        "1.1",
        AFTER,
        ("2.0", 1, 1, 1),
        "Your maintenance starts on 2027-07-01; it brings 3 newer releases, including "
        "1 security revision; newest: 2.0.",
    ),
    "revoke-policy-misses-what-was-covered": RenewalCase(
        LAPSED, "1.0", AFTER, ("2.0", 2, 1, 1), policy=policy(lapse_policy="revoke")
    ),
    "carve-out-security-is-not-missing": RenewalCase(
        LAPSED,
        "1.1",
        AFTER,
        ("2.0", 1, 0, 1),
        policy=policy(security_carveout_months=3),
    ),
    "lines-end-of-life-and-update-on-security-only-not-counted": RenewalCase(
        LAPSED, "1.1", AFTER, ("4.1.1", 0, 1, 0), releases=LINES
    ),
    "lines-the-way-out-of-an-end-of-life-line-counts-updates-too": RenewalCase(
        LAPSED, "4.0", AFTER, ("4.1.1", 1, 1, 0), releases=LINES, installed_line="3.x"
    ),
    "active-nothing-to-say": RenewalCase(ACTIVE, "1.0", NOW, None),
    "expiring-reminds": RenewalCase(
        ACTIVE,
        "1.1",
        utc(2026, 12, 20),
        (None, 0, 0, 0),
        "Maintenance ends on 2026-12-31. Renew to keep receiving updates and security revisions.",
    ),
    "grace-reminds-until-when": RenewalCase(
        LAPSED,
        "1.1",
        utc(2027, 1, 5),
        (None, 0, 0, 0),
        "Maintenance ended on 2026-12-31. Renew by 2027-01-14 to keep receiving updates and "
        "security revisions.",
        policy=policy(grace_days=14),
    ),
    "suspended-no-prompt": RenewalCase(license_of(Y2026, status="suspended"), "1.1", AFTER, None),
    "revoked-no-prompt": RenewalCase(license_of(Y2026, status="revoked"), "1.1", AFTER, None),
    "another-product-no-prompt": RenewalCase(
        license_of(Y2026, product="other"), "1.1", AFTER, None
    ),
}


@pytest.mark.parametrize("case", RENEWAL_CASES.values(), ids=RENEWAL_CASES.keys())
def test_renewal_summary(case: RenewalCase) -> None:
    summary = renewal_summary(
        case.license,
        case.policy,
        ReleaseIndex.of(case.releases),
        installed_version=Version(case.installed),
        platform=case.platform,
        channel=case.channel,
        now=case.now,
        installed_line=case.installed_line,
    )
    if case.expected is None:
        assert summary is None
        return
    assert summary is not None
    newest = str(summary.newest_version) if summary.newest_version else None
    assert (newest, summary.updates, summary.security, summary.versions) == case.expected
    if case.message:
        assert str(summary.message) == case.message


def test_renewal_would_bring_exactly_what_a_renewed_license_is_offered() -> None:
    """The prompt's newest version is what the same installation gets the day it renews."""
    renewed = license_of(Y2026, maintenance("2027-06-01", "2028-05-31"))
    before = renewal_summary(
        LAPSED,
        DEFAULT,
        CATALOG,
        installed_version=Version("1.1"),
        platform=PLATFORM,
        channel="stable",
        now=AFTER,
    )
    offered, _ = offer_for(CATALOG, "1.1", lic=renewed, now=AFTER)
    assert before is not None and str(before.newest_version) == offered == "2.0"
