"""The offer and the renewal prompt walk only the releases that can matter to a check
(:meth:`ReleaseIndex.candidates`, bisection over publication and version, counts made in
advance): they must decide exactly as the plain walk over every release does.

The plain walk lives here, as the reference: newest first, every rule asked of every release,
owned lines always worked out, no shortcut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version

from server.domain.coverage import covered_now, maintenance_status
from server.domain.entitlements import decide, owned_lines
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.offers import (
    ReleaseIndex,
    for_platform,
    in_rollout,
    line_allows,
    on_channel,
    renewal_summary,
    select_offer,
    steps_from,
)
from server.domain.vocabulary import Maintenance
from tests.common.facts import (
    CUSTOMER,
    PLATFORM,
    PRODUCT,
    customization,
    license_of,
    maintenance,
    policy,
    release,
    utc,
)

START = utc(2026, 1, 1, 0)
VERSIONS = [f"{major}.{minor}" for major in (1, 2, 3) for minor in range(4)]
INSTALLED = ["0.9", "1.0", "1.2", "2.0", "2.3", "3.1", "4.0"]
CHANNELS = ["stable", "beta", "nightly"]  # nightly: a channel no release names
PLATFORMS = [PLATFORM, "windows", "mac"]  # mac: a platform no release names
EXAMPLES = settings(max_examples=150, derandomize=True, deadline=None)


def moment(days: int, hours: int = 0) -> datetime:
    return START + timedelta(days=days, hours=hours)


# --------------------------------------------------------------------------- the plain walk


def plain_offer(
    lic: LicenseFacts,
    pol: ProductPolicy,
    releases: Sequence[ReleaseFacts],
    *,
    installed: Version,
    platform: str,
    channel: str,
    installation_id: str,
    now: datetime,
    installed_line: str | None,
) -> ReleaseFacts | None:
    status = maintenance_status(lic, pol, now)
    line = ReleaseIndex.of(releases).line_of(installed, installed_line)
    way_out = line is not None and line[1] == "end-of-life"
    owned = owned_lines(lic, pol, releases, status)
    for r in sorted(releases, key=lambda r: r.version, reverse=True):
        if (
            r.version > installed
            and on_channel(r, channel)
            and for_platform(r, platform)
            and line_allows(r, way_out=way_out)
            and steps_from(r, installed)
            and in_rollout(r, installation_id)
            and decide(lic, pol, r, now, owned_lines=owned).offerable
        ):
            return r
    return None


def plain_missing(
    lic: LicenseFacts,
    pol: ProductPolicy,
    releases: Sequence[ReleaseFacts],
    *,
    installed: Version,
    platform: str,
    channel: str,
    now: datetime,
    installed_line: str | None,
) -> list[ReleaseFacts]:
    status = maintenance_status(lic, pol, now)
    line = ReleaseIndex.of(releases).line_of(installed, installed_line)
    way_out = line is not None and line[1] == "end-of-life"
    owned = owned_lines(lic, pol, releases, status)
    return [
        r
        for r in releases
        if r.version > installed
        and not r.yanked
        and on_channel(r, channel)
        and for_platform(r, platform)
        and line_allows(r, way_out=way_out)
        and not decide(lic, pol, r, now, owned_lines=owned).entitled
        and decide(lic, pol, r, now, status=covered_now(now)).entitled
    ]


# --------------------------------------------------------------------------- random catalogues


@st.composite
def catalogues(draw: st.DrawFn) -> list[ReleaseFacts]:
    line_status = {
        major: draw(st.sampled_from(["supported", "supported", "security-only", "end-of-life"]))
        for major in (1, 2, 3)
    }
    versions = draw(st.lists(st.sampled_from(VERSIONS), unique=True, max_size=12))
    made = []
    for n, version in enumerate(versions):
        kind = draw(st.sampled_from(["update", "security", "version"]))
        made.append(
            release(
                version,
                moment(draw(st.integers(0, 700)), draw(st.sampled_from([0, 12]))),
                kind=kind,
                severity=draw(st.sampled_from(["critical", "serious"]))
                if kind == "security"
                else None,
                line_status=line_status[Version(version).major],
                customers=draw(st.sampled_from([(), (), (), (CUSTOMER,), ("someone-else",)])),
                yanked=draw(st.integers(0, 5)) == 0,
                channel=draw(st.sampled_from(["stable", "stable", "beta"])),
                min_from=draw(st.sampled_from([None, None, None, "1.1", "2.0"])),
                platforms=draw(
                    st.sampled_from([(PLATFORM,), ("any",), ("windows",), (PLATFORM, "windows")])
                ),
                rollout=draw(st.sampled_from([100, 100, 100, 50, 0])),
                product=PRODUCT if draw(st.integers(0, 15)) else "another-product",
                release_id=n + 1,
            )
        )
    return made


@st.composite
def licenses(draw: st.DrawFn) -> LicenseFacts:
    contracts = []
    for _ in range(draw(st.integers(0, 3))):
        starts = START.date() + timedelta(days=draw(st.integers(0, 600)))
        contracts.append(maintenance(starts, starts + timedelta(days=draw(st.integers(0, 300)))))
    if draw(st.booleans()):
        starts = START.date() + timedelta(days=draw(st.integers(0, 400)))
        contracts.append(customization(starts, starts + timedelta(days=draw(st.integers(0, 400)))))
    status = draw(st.sampled_from(["active", "active", "active", "active", "suspended"]))
    return license_of(*contracts, status=status)


@st.composite
def policies(draw: st.DrawFn) -> ProductPolicy:
    return policy(
        lapse_policy=draw(st.sampled_from(["fallback", "fallback", "revoke"])),
        security_carveout_months=draw(st.sampled_from([0, 0, 3])),
        grace_days=draw(st.sampled_from([0, 0, 20])),
    )


@dataclass(frozen=True)
class Check:
    installed: Version
    installed_line: str | None
    channel: str
    platform: str
    installation_id: str


checks = st.builds(
    Check,
    st.sampled_from(INSTALLED).map(Version),
    st.sampled_from([None, None, None, "1.x", "2.x"]),
    st.sampled_from(CHANNELS),
    st.sampled_from(PLATFORMS),
    st.sampled_from([f"installation-{n}" for n in range(4)]),
)


# --------------------------------------------------------------------------- the properties


@EXAMPLES
@given(
    catalogues(),
    licenses(),
    policies(),
    st.integers(0, 900),
    st.lists(checks, min_size=1, max_size=4),
)
def test_the_offer_is_the_plain_walks(
    releases: list[ReleaseFacts],
    lic: LicenseFacts,
    pol: ProductPolicy,
    day: int,
    asked: list[Check],
) -> None:
    index = ReleaseIndex.of(releases)  # shared by the checks, as a catalogue's is
    now = moment(day, 6)
    for check in asked:
        result = select_offer(
            lic,
            pol,
            index,
            installed_version=check.installed,
            platform=check.platform,
            channel=check.channel,
            installation_id=check.installation_id,
            now=now,
            installed_line=check.installed_line,
        )
        expected = plain_offer(
            lic,
            pol,
            releases,
            installed=check.installed,
            platform=check.platform,
            channel=check.channel,
            installation_id=check.installation_id,
            now=now,
            installed_line=check.installed_line,
        )
        assert (result.offer.release if result.offer else None) == expected


@EXAMPLES
@given(
    catalogues(),
    licenses(),
    policies(),
    st.integers(0, 900),
    st.lists(checks, min_size=1, max_size=4),
)
def test_the_renewal_prompt_counts_the_plain_walks_missing_releases(
    releases: list[ReleaseFacts],
    lic: LicenseFacts,
    pol: ProductPolicy,
    day: int,
    asked: list[Check],
) -> None:
    index = ReleaseIndex.of(releases)
    now = moment(day, 6)
    status = maintenance_status(lic, pol, now).status
    for check in asked:
        summary = renewal_summary(
            lic,
            pol,
            index,
            installed_version=check.installed,
            platform=check.platform,
            channel=check.channel,
            now=now,
            installed_line=check.installed_line,
        )
        missing = plain_missing(
            lic,
            pol,
            releases,
            installed=check.installed,
            platform=check.platform,
            channel=check.channel,
            now=now,
            installed_line=check.installed_line,
        )
        if status not in (Maintenance.LAPSED, Maintenance.NONE) or lic.status != "active":
            assert summary is None or summary.newest_version is None
            continue
        if not missing:
            assert summary is None
            continue
        assert summary is not None
        kinds = [r.kind for r in missing]
        assert (summary.newest_version, summary.updates, summary.security, summary.versions) == (
            max(r.version for r in missing),
            kinds.count("update"),
            kinds.count("security"),
            kinds.count("version"),
        )
        total = f"{len(missing)} newer release{'s' if len(missing) > 1 else ''},"
        assert total in str(summary.message)


# --------------------------------------------------------------------------- the worst case, by hand


def lapsed_history(count: int = 300) -> tuple[LicenseFacts, list[ReleaseFacts], datetime]:
    """An old installation's view, as the bench has it: a release a day for ``count`` days, every
    tenth a security revision, and a license whose maintenance lapsed 40 days ago."""
    releases = [
        release(
            f"{1 + n // 100}.{n % 100}.1",
            moment(n),
            kind="security" if n % 10 == 9 else "update",
            severity="serious" if n % 10 == 9 else None,
            release_id=n + 1,
        )
        for n in range(count)
    ]
    now = moment(count)
    ends = (now - timedelta(days=41)).date()  # covered until 40 days ago
    return license_of(maintenance(START.date(), ends)), releases, now


def test_a_lapsed_customer_is_offered_the_last_release_before_the_cutoff() -> None:
    lic, releases, now = lapsed_history()
    result = select_offer(
        lic,
        policy(),
        ReleaseIndex.of(releases),
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        installation_id="installation-1",
        now=now,
    )
    assert result.offer is not None and str(result.offer.release.version) == "3.59.1"


def renewal_for(
    lic: LicenseFacts, releases: list[ReleaseFacts], now: datetime, installed: str = "1.0"
) -> tuple[Version | None, int, int, int, str] | None:
    summary = renewal_summary(
        lic,
        policy(),
        ReleaseIndex.of(releases),
        installed_version=Version(installed),
        platform=PLATFORM,
        channel="stable",
        now=now,
    )
    if summary is None:
        return None
    return (
        summary.newest_version,
        summary.updates,
        summary.security,
        summary.versions,
        str(summary.message),
    )


def test_a_lapsed_customer_is_told_what_the_last_40_days_brought() -> None:
    lic, releases, now = lapsed_history()
    found = renewal_for(lic, releases, now)
    assert found is not None
    assert found[:4] == (Version("3.99.1"), 36, 4, 0)
    assert "40 newer releases, including 4 security revisions" in found[4]


def test_the_counts_made_in_advance_give_way_where_they_would_be_wrong() -> None:
    """Each of a customized build for someone else, a release published after now, one of
    another product, and releases at or below the installed version published after the cutoff
    changes what is missing: none may be counted."""
    lic, releases, now = lapsed_history(100)
    expected = renewal_for(lic, releases, now)
    assert expected is not None and "40 newer releases" in expected[4]
    others = release("1.95.5", now - timedelta(days=1), customers=("someone-else",))
    later = release("1.96.5", now + timedelta(days=1))
    assert renewal_for(lic, [*releases, others], now) == expected
    assert renewal_for(lic, [*releases, later], now) == expected
    assert renewal_for(lic, [*releases, release("1.97.5", now, product="other")], now) == expected
    assert renewal_for(lic, releases, now, installed="1.60.1") == (
        Version("1.99.1"),
        35,
        4,
        0,
        expected[4].replace("40 newer", "39 newer"),
    )
    assert renewal_for(lic, releases, now, installed="1.70.1") == (
        Version("1.99.1"),
        26,
        3,
        0,
        expected[4].replace("40 newer", "29 newer").replace("4 security", "3 security"),
    )


def test_unknown_channels_and_platforms_share_the_catalogues_entries() -> None:
    """The candidates kept per kind of installation are bounded by what the catalogue names,
    not by what requests send."""
    index = ReleaseIndex.of(
        [release("1.0", moment(1)), release("1.1", moment(2), channel="beta", platforms=("any",))]
    )
    for n in range(50):
        index.candidates(f"channel-{n}", f"platform-{n}", way_out=n % 2 == 0)
        index.candidates("beta", PLATFORM, way_out=False)
    assert len(index._candidates) == 3
    kept = index.candidates("beta", PLATFORM, way_out=False)
    assert index.candidates("beta", PLATFORM, way_out=False) is kept  # worked out once
    assert [str(r.version) for r in index.candidates("x", "y", way_out=False).by_version] == []
    assert [str(r.version) for r in index.candidates("beta", "y", way_out=False).by_version] == [
        "1.1"
    ]


def test_the_security_carve_out_is_not_counted_as_missing() -> None:
    """Three months of security revisions after the lapse stay entitled: only the updates are
    missing (the counts made in advance do not apply under a carve-out)."""
    lic, releases, now = lapsed_history()
    summary = renewal_summary(
        lic,
        policy(security_carveout_months=3),
        ReleaseIndex.of(releases),
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        now=now,
    )
    assert summary is not None
    assert (summary.newest_version, summary.updates, summary.security) == (
        Version("3.98.1"),
        36,
        0,
    )


def test_a_release_published_at_this_very_instant_is_offered() -> None:
    """While covered, the cutoff is now and includes it."""
    now = moment(10, 6)
    lic = license_of(maintenance("2026-01-01", "2026-12-31"))
    releases = [release("1.1", moment(5)), release("1.2", now)]
    result = select_offer(
        lic,
        policy(),
        ReleaseIndex.of(releases),
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        installation_id="installation-1",
        now=now,
    )
    assert result.offer is not None and str(result.offer.release.version) == "1.2"


def test_after_a_lapse_under_revoke_everything_above_the_installed_version_is_missing() -> None:
    lic, releases, now = lapsed_history(100)
    summary = renewal_summary(
        lic,
        policy(lapse_policy="revoke"),
        ReleaseIndex.of(releases),
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        now=now,
    )
    assert summary is not None
    assert (summary.newest_version, summary.updates, summary.security) == (
        Version("1.99.1"),
        90,
        10,
    )


def test_an_old_lines_fix_published_late_neither_hides_nor_is_counted() -> None:
    """Version order is not publication order: a fix of an old version published after newer
    releases must not hide them from the offer, and is not missing for a newer installation."""
    lapsed = license_of(maintenance(START.date(), moment(14).date()))  # until day 15 began
    catalogue = [release("1.0", moment(1)), release("2.0", moment(10)), release("1.1", moment(20))]
    offered = select_offer(
        lapsed,
        policy(),
        ReleaseIndex.of(catalogue),
        installed_version=Version("1.0"),
        platform=PLATFORM,
        channel="stable",
        installation_id="installation-1",
        now=moment(30),
    )
    assert offered.offer is not None and str(offered.offer.release.version) == "2.0"
    lic, releases, now = lapsed_history(100)
    late_fix = release("1.40.5", now - timedelta(days=1))
    expected = renewal_for(lic, releases, now, installed="1.50.1")
    assert expected is not None and "40 newer releases" in expected[4]
    assert renewal_for(lic, [*releases, late_fix], now, installed="1.50.1") == expected


def test_published_since_is_latest_first_from_the_instant_on() -> None:
    index = ReleaseIndex.of(
        [release(v, moment(d)) for v, d in [("1.0", 1), ("2.0", 2), ("1.5", 3)]]
    )
    assert [str(r.version) for r in index.published_since(moment(2))] == ["1.5", "2.0"]
    assert [str(r.version) for r in index.published_since(moment(4))] == []
