"""The entitlement rules as a named-case table: every rule of DESIGN.md and its boundary dates.

Pure functions, so no database: facts in, decision out, ``now`` given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from packaging.version import Version

from server.domain.entitlements import (
    ContractFacts,
    LicenseFacts,
    ProductPolicy,
    ReleaseFacts,
    add_months,
    decide,
    maintenance_status,
)
from server.domain.offers import (
    ReleaseIndex,
    in_rollout,
    renewal_summary,
    rollout_bucket,
    select_offer,
)

P = "acme"


def utc(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


def local(zone: str, y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=ZoneInfo(zone))


def maint(start: date, end: date, product: str | None = P) -> ContractFacts:
    return ContractFacts("maintenance", product, start, end)


def custom(start: date, end: date) -> ContractFacts:
    return ContractFacts("customization", P, start, end)


def lic(
    *contracts: ContractFacts, status: str = "active", customer: str = "initech", product: str = P
) -> LicenseFacts:
    return LicenseFacts(status, product, customer, tuple(contracts))


_ids = iter(range(1, 10_000))


def rel(
    version: str,
    published: datetime,
    *,
    kind: str = "update",
    severity: str | None = None,
    line: str | None = None,
    line_status: str = "supported",
    customers: frozenset[str] = frozenset(),
    yanked: bool = False,
    channel: str = "stable",
    min_from: str | None = None,
    platforms: frozenset[str] = frozenset({"linux-x86_64"}),
    rollout: int = 100,
    product: str = P,
) -> ReleaseFacts:
    v = Version(version)
    return ReleaseFacts(
        id=next(_ids),
        product=product,
        version=v,
        kind=kind,
        severity=severity,
        channel=channel,
        line=line or f"{v.major}.x",
        line_status=line_status,
        published_at=published,
        customers=customers,
        yanked=yanked,
        yank_reason="broken" if yanked else None,
        recommended_version=None,
        min_from=Version(min_from) if min_from else None,
        platforms=platforms,
        rollout_percent=rollout,
    )


POLICY = ProductPolicy(P)
YEAR_2026 = maint(date(2026, 1, 1), date(2026, 12, 31))


@dataclass(frozen=True)
class StatusCase:
    license: LicenseFacts
    now: datetime
    status: str
    cutoff: datetime | None
    policy: ProductPolicy = POLICY


STATUS_CASES = {
    "active-mid-contract": StatusCase(lic(YEAR_2026), utc(2026, 6, 1), "active", utc(2026, 6, 1)),
    "expiring-inside-window": StatusCase(
        lic(YEAR_2026), utc(2026, 12, 5), "expiring", utc(2026, 12, 5)
    ),
    "active-just-outside-window": StatusCase(
        lic(YEAR_2026), utc(2026, 12, 1, 23, 59, 59), "active", utc(2026, 12, 1, 23, 59, 59)
    ),
    "expiring-exactly-30-days-left": StatusCase(
        lic(YEAR_2026), utc(2026, 12, 2, 0), "expiring", utc(2026, 12, 2, 0)
    ),
    "last-day-last-second": StatusCase(
        lic(YEAR_2026), utc(2026, 12, 31, 23, 59, 59), "expiring", utc(2026, 12, 31, 23, 59, 59)
    ),
    "day-after-first-second": StatusCase(
        lic(YEAR_2026), utc(2027, 1, 1, 0, 0, 0), "lapsed", utc(2027, 1, 1, 0)
    ),
    "lapsed-months-later": StatusCase(
        lic(YEAR_2026), utc(2027, 6, 1), "lapsed", utc(2027, 1, 1, 0)
    ),
    "grace-inside": StatusCase(
        lic(YEAR_2026),
        utc(2027, 1, 10),
        "grace",
        utc(2027, 1, 10),
        policy=replace(POLICY, grace_days=14),
    ),
    "grace-last-second": StatusCase(
        lic(YEAR_2026),
        utc(2027, 1, 14, 23, 59, 59),
        "grace",
        utc(2027, 1, 14, 23, 59, 59),
        policy=replace(POLICY, grace_days=14),
    ),
    "grace-over-cutoff-is-contract-end": StatusCase(
        lic(YEAR_2026),
        utc(2027, 1, 15, 0),
        "lapsed",
        utc(2027, 1, 1, 0),
        policy=replace(POLICY, grace_days=14),
    ),
    "never-bought": StatusCase(lic(), utc(2026, 6, 1), "none", None),
    "future-contract-only": StatusCase(
        lic(maint(date(2027, 1, 1), date(2027, 12, 31))), utc(2026, 6, 1), "none", None
    ),
    "contract-for-other-product": StatusCase(
        lic(maint(date(2026, 1, 1), date(2026, 12, 31), "other")), utc(2026, 6, 1), "none", None
    ),
    "all-products-contract": StatusCase(
        lic(maint(date(2026, 1, 1), date(2026, 12, 31), None)),
        utc(2026, 6, 1),
        "active",
        utc(2026, 6, 1),
    ),
    "adjacent-contracts-merge": StatusCase(
        lic(
            maint(date(2025, 1, 1), date(2025, 12, 31)), maint(date(2026, 1, 1), date(2026, 12, 31))
        ),
        utc(2025, 12, 20),
        "active",
        utc(2025, 12, 20),
    ),
    "renewed-after-lapse": StatusCase(
        lic(
            maint(date(2024, 1, 1), date(2024, 12, 31)), maint(date(2026, 3, 1), date(2027, 2, 28))
        ),
        utc(2026, 3, 1, 0),
        "active",
        utc(2026, 3, 1, 0),
    ),
    "gap-between-contracts-is-lapsed": StatusCase(
        lic(
            maint(date(2024, 1, 1), date(2024, 12, 31)), maint(date(2026, 3, 1), date(2027, 2, 28))
        ),
        utc(2025, 6, 1),
        "lapsed",
        utc(2025, 1, 1, 0),
    ),
    "leap-day-end-covered": StatusCase(
        lic(maint(date(2027, 3, 1), date(2028, 2, 29))),
        utc(2028, 2, 29, 23, 59),
        "expiring",
        utc(2028, 2, 29, 23, 59),
    ),
    "leap-day-end-next-day": StatusCase(
        lic(maint(date(2027, 3, 1), date(2028, 2, 29))),
        utc(2028, 3, 1, 0),
        "lapsed",
        utc(2028, 3, 1, 0),
    ),
    "new-york-last-local-second": StatusCase(
        lic(YEAR_2026),
        local("America/New_York", 2026, 12, 31, 23, 59, 59).astimezone(UTC),
        "expiring",
        local("America/New_York", 2026, 12, 31, 23, 59, 59).astimezone(UTC),
        policy=replace(POLICY, timezone="America/New_York"),
    ),
    "new-york-still-covered-when-utc-is-next-day": StatusCase(
        lic(YEAR_2026),
        utc(2027, 1, 1, 3, 0),
        "expiring",
        utc(2027, 1, 1, 3, 0),
        policy=replace(POLICY, timezone="America/New_York"),
    ),
    "new-york-local-midnight-lapses": StatusCase(
        lic(YEAR_2026),
        local("America/New_York", 2027, 1, 1, 0).astimezone(UTC),
        "lapsed",
        local("America/New_York", 2027, 1, 1, 0).astimezone(UTC),
        policy=replace(POLICY, timezone="America/New_York"),
    ),
    "auckland-lapses-before-utc-midnight": StatusCase(
        lic(YEAR_2026),
        utc(2026, 12, 31, 12, 0),
        "lapsed",
        local("Pacific/Auckland", 2027, 1, 1).astimezone(UTC),
        policy=replace(POLICY, timezone="Pacific/Auckland"),
    ),
    "suspended-license": StatusCase(
        lic(YEAR_2026, status="suspended"), utc(2026, 6, 1), "none", None
    ),
    "license-for-other-product": StatusCase(
        lic(YEAR_2026, product="other"), utc(2026, 6, 1), "none", None
    ),
}


@pytest.mark.parametrize("case", STATUS_CASES.values(), ids=STATUS_CASES.keys())
def test_maintenance_status_and_cutoff(case: StatusCase) -> None:
    result = maintenance_status(case.license, case.policy, case.now)
    assert result.status == case.status
    assert result.cutoff == case.cutoff
    assert result.message


@dataclass(frozen=True)
class DecisionCase:
    license: LicenseFacts
    release: ReleaseFacts
    now: datetime
    entitled: bool
    offerable: bool | None = None  # defaults to entitled
    policy: ProductPolicy = POLICY
    owned: frozenset[str] = frozenset()


LAPSED = lic(YEAR_2026)  # covered 2026 only
AFTER = utc(2027, 6, 1)
CARVE = replace(POLICY, security_carveout_months=3)

DECISION_CASES = {
    # rule 3: perpetual fallback
    "active-gets-newest": DecisionCase(
        lic(YEAR_2026), rel("2.0", utc(2026, 5, 1)), utc(2026, 6, 1), True
    ),
    "lapsed-keeps-release-of-last-covered-day": DecisionCase(
        LAPSED, rel("1.9", utc(2026, 12, 31, 23, 59)), AFTER, True
    ),
    "lapsed-not-release-of-day-after": DecisionCase(
        LAPSED, rel("2.0", utc(2027, 1, 1, 0, 0)), AFTER, False
    ),
    "lapsed-keeps-old-security-revision": DecisionCase(
        LAPSED, rel("1.8.1", utc(2026, 3, 1), kind="security", severity="critical"), AFTER, True
    ),
    "lapsed-keeps-release-from-before-the-contract": DecisionCase(
        LAPSED, rel("1.0", utc(2024, 1, 1)), AFTER, True
    ),
    "grace-gets-release-after-end": DecisionCase(
        lic(YEAR_2026),
        rel("2.0", utc(2027, 1, 5)),
        utc(2027, 1, 10),
        True,
        policy=replace(POLICY, grace_days=14),
    ),
    "never-bought-gets-nothing": DecisionCase(
        lic(), rel("1.0", utc(2020, 1, 1)), utc(2026, 6, 1), False
    ),
    "unpublished-yet": DecisionCase(
        lic(YEAR_2026), rel("2.0", utc(2026, 7, 1)), utc(2026, 6, 1), False
    ),
    # rule 8: renewal restores everything, including releases from the gap
    "renewal-restores-gap-release": DecisionCase(
        lic(YEAR_2026, maint(date(2027, 6, 1), date(2028, 5, 31))),
        rel("2.0", utc(2027, 3, 1)),
        utc(2027, 6, 1, 0),
        True,
    ),
    # rule 1
    "suspended-gets-nothing": DecisionCase(
        lic(YEAR_2026, status="suspended"), rel("1.0", utc(2026, 2, 1)), utc(2026, 6, 1), False
    ),
    "revoked-gets-nothing": DecisionCase(
        lic(YEAR_2026, status="revoked"), rel("1.0", utc(2026, 2, 1)), utc(2026, 6, 1), False
    ),
    "other-product-release": DecisionCase(
        lic(YEAR_2026), rel("1.0", utc(2026, 2, 1), product="other"), utc(2026, 6, 1), False
    ),
    # rule 6: lapse policies
    "revoke-policy-lapsed-gets-nothing": DecisionCase(
        LAPSED,
        rel("1.0", utc(2026, 2, 1)),
        AFTER,
        False,
        policy=replace(POLICY, lapse_policy="revoke"),
    ),
    "revoke-policy-active-unaffected": DecisionCase(
        lic(YEAR_2026),
        rel("1.0", utc(2026, 2, 1)),
        utc(2026, 6, 1),
        True,
        policy=replace(POLICY, lapse_policy="revoke"),
    ),
    "carve-out-security-of-owned-line-inside-window": DecisionCase(
        LAPSED,
        rel("1.9.1", utc(2027, 3, 31, 23), kind="security", severity="serious", line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        owned=frozenset({"1.x"}),
    ),
    "carve-out-ends-after-n-months": DecisionCase(
        LAPSED,
        rel("1.9.2", utc(2027, 4, 1, 0), kind="security", severity="serious", line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=frozenset({"1.x"}),
    ),
    "carve-out-not-for-unowned-line": DecisionCase(
        LAPSED,
        rel("2.0.1", utc(2027, 2, 1), kind="security", severity="serious", line="2.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=frozenset({"1.x"}),
    ),
    "carve-out-not-for-updates": DecisionCase(
        LAPSED,
        rel("1.10", utc(2027, 2, 1), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=frozenset({"1.x"}),
    ),
    "carve-out-also-under-revoke": DecisionCase(
        LAPSED,
        rel("1.9.1", utc(2027, 2, 1), kind="security", severity="minor", line="1.x"),
        AFTER,
        True,
        policy=replace(CARVE, lapse_policy="revoke"),
        owned=frozenset({"1.x"}),
    ),
    # rule 4: customized builds
    "custom-build-covered": DecisionCase(
        lic(YEAR_2026, custom(date(2026, 1, 1), date(2026, 12, 31))),
        rel("1.5+initech.1", utc(2026, 5, 1), customers=frozenset({"initech"})),
        utc(2026, 6, 1),
        True,
    ),
    "custom-build-without-customization-contract": DecisionCase(
        lic(YEAR_2026),
        rel("1.5+initech.1", utc(2026, 5, 1), customers=frozenset({"initech"})),
        utc(2026, 6, 1),
        False,
    ),
    "custom-build-published-after-customization-ended": DecisionCase(
        lic(YEAR_2026, custom(date(2026, 1, 1), date(2026, 3, 31))),
        rel("1.5+initech.1", utc(2026, 4, 1, 0), customers=frozenset({"initech"})),
        utc(2026, 6, 1),
        False,
    ),
    "custom-build-of-another-customer": DecisionCase(
        lic(YEAR_2026, custom(date(2026, 1, 1), date(2026, 12, 31))),
        rel("1.5+globex.1", utc(2026, 5, 1), customers=frozenset({"globex"})),
        utc(2026, 6, 1),
        False,
    ),
    "custom-build-kept-after-lapse": DecisionCase(
        lic(YEAR_2026, custom(date(2026, 1, 1), date(2026, 12, 31))),
        rel("1.5+initech.1", utc(2026, 5, 1), customers=frozenset({"initech"})),
        AFTER,
        True,
    ),
    # rule 5: yanked
    "yanked-entitled-not-offerable": DecisionCase(
        lic(YEAR_2026),
        rel("1.0", utc(2026, 2, 1), yanked=True),
        utc(2026, 6, 1),
        True,
        offerable=False,
    ),
}


@pytest.mark.parametrize("case", DECISION_CASES.values(), ids=DECISION_CASES.keys())
def test_decide(case: DecisionCase) -> None:
    decision = decide(case.license, case.policy, case.release, case.now, owned_lines=case.owned)
    assert decision.entitled is case.entitled, decision.reasons
    expected_offerable = case.entitled if case.offerable is None else case.offerable
    assert decision.offerable is expected_offerable
    assert decision.reasons


# --------------------------------------------------------------------------- offers


NOW = utc(2026, 6, 1)
ACTIVE = lic(YEAR_2026)


def offered(
    releases: list[ReleaseFacts],
    installed: str,
    *,
    license: LicenseFacts = ACTIVE,
    channel: str = "stable",
    platform: str = "linux-x86_64",
    installation: str = "installation-000001",
    now: datetime = NOW,
    policy: ProductPolicy = POLICY,
) -> str | None:
    result = select_offer(
        license,
        policy,
        ReleaseIndex.of(releases),
        installed_version=Version(installed),
        platform=platform,
        channel=channel,
        installation_id=installation,
        now=now,
    )
    return str(result.offer.release.version) if result.offer else None


def test_highest_newer_entitled_release_is_offered() -> None:
    releases = [
        rel("1.0", utc(2026, 1, 5)),
        rel("1.1", utc(2026, 2, 5)),
        rel("1.2", utc(2026, 3, 5)),
    ]
    assert offered(releases, "1.0") == "1.2"
    assert offered(releases, "1.2") is None
    assert offered(releases, "9.0") is None, "never a downgrade"


def test_min_from_makes_a_stepping_stone() -> None:
    releases = [
        rel("1.0", utc(2026, 1, 5)),
        rel("2.0", utc(2026, 2, 5)),
        rel("3.0", utc(2026, 3, 5), min_from="2.0"),
    ]
    assert offered(releases, "1.0") == "2.0"
    assert offered(releases, "2.0") == "3.0"


def test_channels_and_platforms() -> None:
    releases = [
        rel("1.1", utc(2026, 2, 5)),
        rel("1.2b1", utc(2026, 3, 5), channel="beta"),
        rel("1.3", utc(2026, 4, 5), platforms=frozenset({"windows-x86_64"})),
        rel("1.4", utc(2026, 5, 5), platforms=frozenset({"any"})),
    ]
    assert offered(releases[:2], "1.0") == "1.1", "stable does not see beta"
    assert offered(releases[:2], "1.0", channel="beta") == "1.2b1", "beta sees beta and stable"
    assert offered(releases[:3], "1.2", platform="linux-x86_64") is None
    assert offered(releases, "1.0") == "1.4", "'any' serves every platform"


def test_line_lifecycle() -> None:
    releases = [
        rel("3.9", utc(2026, 1, 5), line_status="end-of-life"),
        rel("4.1", utc(2026, 2, 5), line_status="security-only"),
        rel(
            "4.1.1", utc(2026, 3, 5), kind="security", severity="minor", line_status="security-only"
        ),
        rel("5.0", utc(2026, 4, 5), kind="version"),
    ]
    result = select_offer(
        ACTIVE,
        POLICY,
        ReleaseIndex.of(releases),
        installed_version=Version("3.8"),
        platform="linux-x86_64",
        channel="stable",
        installation_id="installation-000001",
        now=NOW,
    )
    assert result.offer is not None and str(result.offer.release.version) == "5.0", "the way out"
    assert [n["code"] for n in result.notices] == ["end_of_life"]
    assert offered(releases[:3], "4.0") == "4.1.1", "security-only line offers security revisions"
    assert offered(releases[:2], "4.0") is None, "and nothing else"


def test_end_of_life_without_entitled_way_out_still_says_so() -> None:
    releases = [rel("3.9", utc(2026, 1, 5), line_status="end-of-life"), rel("5.0", utc(2027, 4, 5))]
    result = select_offer(
        ACTIVE,
        POLICY,
        ReleaseIndex.of(releases),
        installed_version=Version("3.9"),
        platform="linux-x86_64",
        channel="stable",
        installation_id="installation-000001",
        now=AFTER,
    )
    assert result.offer is None
    assert result.notices[0]["code"] == "end_of_life"
    assert "Renew" in result.notices[0]["message"]


def test_yanked_installed_release_notice_and_never_offered() -> None:
    releases = [rel("1.1", utc(2026, 2, 5), yanked=True), rel("1.0", utc(2026, 1, 5))]
    assert offered(releases, "1.0") is None
    result = select_offer(
        ACTIVE,
        POLICY,
        ReleaseIndex.of(releases),
        installed_version=Version("1.1"),
        platform="linux-x86_64",
        channel="stable",
        installation_id="installation-000001",
        now=NOW,
    )
    assert result.notices[0]["code"] == "yanked"


@pytest.mark.parametrize(("percent", "share"), [(0, 0.0), (100, 1.0)])
def test_rollout_extremes(percent: int, share: float) -> None:
    release = rel("1.1", utc(2026, 2, 5), rollout=percent)
    hits = sum(in_rollout(release, f"installation-{i:06d}") for i in range(200))
    assert hits / 200 == share


def test_rollout_half_is_deterministic_and_critical_bypasses() -> None:
    release = rel("1.1", utc(2026, 2, 5), rollout=50)
    first = [in_rollout(release, f"installation-{i:06d}") for i in range(400)]
    assert first == [in_rollout(release, f"installation-{i:06d}") for i in range(400)]
    assert 0.4 < sum(first) / 400 < 0.6
    # Buckets depend on the release too: the same installations are not always first in line.
    assert [rollout_bucket(f"installation-{i:06d}", 1) for i in range(20)] != [
        rollout_bucket(f"installation-{i:06d}", 2) for i in range(20)
    ]
    critical = rel("1.1.1", utc(2026, 2, 5), kind="security", severity="critical", rollout=0)
    assert all(in_rollout(critical, f"installation-{i:06d}") for i in range(50))


def test_apply_by_follows_severity_deadlines() -> None:
    published = utc(2026, 5, 31, 20)
    for severity, hours in (("critical", 8), ("serious", 24), ("minor", 72)):
        release = rel("1.1", published, kind="security", severity=severity)
        result = select_offer(
            ACTIVE,
            POLICY,
            ReleaseIndex.of([release]),
            installed_version=Version("1.0"),
            platform="linux-x86_64",
            channel="stable",
            installation_id="installation-000001",
            now=utc(2026, 5, 31, 21),
        )
        assert result.offer is not None
        assert result.offer.apply_by == published + timedelta(hours=hours)
    late = select_offer(
        ACTIVE,
        POLICY,
        ReleaseIndex.of([rel("1.1", utc(2026, 1, 1), kind="security", severity="critical")]),
        installed_version=Version("1.0"),
        platform="linux-x86_64",
        channel="stable",
        installation_id="installation-000001",
        now=NOW,
    )
    assert late.offer is not None and late.offer.apply_by == NOW, "overdue means now"
    plain = select_offer(
        ACTIVE,
        POLICY,
        ReleaseIndex.of([rel("1.1", utc(2026, 1, 1))]),
        installed_version=Version("1.0"),
        platform="linux-x86_64",
        channel="stable",
        installation_id="installation-000001",
        now=NOW,
    )
    assert plain.offer is not None and plain.offer.apply_by is None


def test_renewal_summary_counts_what_renewal_would_bring() -> None:
    releases = [
        rel("1.1", utc(2026, 6, 1)),
        rel("1.2", utc(2027, 2, 1)),
        rel("1.2.1", utc(2027, 3, 1), kind="security", severity="critical"),
        rel("2.0", utc(2027, 4, 1), kind="version"),
        rel("2.0.1", utc(2027, 5, 1), yanked=True),
        rel("2.0+globex.1", utc(2027, 5, 2), customers=frozenset({"globex"})),
    ]
    summary = renewal_summary(
        LAPSED,
        POLICY,
        ReleaseIndex.of(releases),
        installed_version=Version("1.1"),
        platform="linux-x86_64",
        channel="stable",
        now=AFTER,
    )
    assert summary is not None
    assert (summary.updates, summary.security, summary.versions) == (1, 1, 1)
    assert summary.newest_version == Version("2.0")
    assert "Renew" in summary.message
    assert (
        renewal_summary(
            ACTIVE,
            POLICY,
            ReleaseIndex.of(releases[:1]),
            installed_version=Version("1.0"),
            platform="linux-x86_64",
            channel="stable",
            now=NOW,
        )
        is None
    )
    expiring = renewal_summary(
        ACTIVE,
        POLICY,
        ReleaseIndex.of(releases[:1]),
        installed_version=Version("1.1"),
        platform="linux-x86_64",
        channel="stable",
        now=utc(2026, 12, 20),
    )
    assert (
        expiring is not None
        and expiring.newest_version is None
        and "2026-12-31" in expiring.message
    )


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (utc(2026, 1, 31), 1, utc(2026, 2, 28)),
        (utc(2027, 11, 30), 3, utc(2028, 2, 29)),
        (utc(2026, 12, 15), 1, utc(2027, 1, 15)),
        (utc(2026, 3, 1), 12, utc(2027, 3, 1)),
    ],
)
def test_add_months_clamps_to_month_end(moment: datetime, months: int, expected: datetime) -> None:
    assert add_months(moment, months) == expected
