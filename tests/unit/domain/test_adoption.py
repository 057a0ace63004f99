"""Security-revision adoption against the deadline (server/domain/adoption.py): who is expected
to apply a revision, and who did on time, late or not yet. Named cases, one installation each."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest
from packaging.version import Version

from server.domain.adoption import AppliedFacts, InstallationFacts, adoption_of, first_apply_since
from server.domain.facts import LicenseFacts, ReleaseFacts
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

PUBLISHED = utc(2026, 5, 4, 9)
DEADLINE = PUBLISHED + timedelta(hours=8)  # critical
NOW = utc(2026, 6, 1)
R = security("4.1.1", PUBLISHED, "critical")
OLDER = release("4.1.0", utc(2026, 3, 1))
NEWER = release("4.2.0", utc(2026, 5, 4, 12))
HISTORY = (OLDER, R, NEWER)
COVERED = license_of(maintenance("2026-01-01", "2026-12-31"))
LICENSE_ID = 7


def installation(**overrides: object) -> InstallationFacts:
    """An installation on 4.1.0, stable, seen before and after publication."""
    base = InstallationFacts(
        license_id=LICENSE_ID,
        uid="installation-0001",
        version=Version("4.1.0"),
        platform=PLATFORM,
        channel="stable",
        first_seen=utc(2026, 4, 1),
        last_seen=utc(2026, 5, 20),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def applied(version: str, at: datetime, from_version: str | None = "4.1.0") -> AppliedFacts:
    return AppliedFacts(Version(version), Version(from_version) if from_version else None, at)


@dataclass(frozen=True)
class Case:
    expected: str  # on_time | late | not_yet | excluded
    reports: tuple[AppliedFacts, ...] = ()
    inst: InstallationFacts = field(default_factory=installation)
    lic: LicenseFacts = COVERED
    revision: ReleaseFacts = R


CASES = {
    "applied exactly at the deadline": Case("on_time", (applied("4.1.1", DEADLINE),)),
    "applied a second after the deadline": Case(
        "late", (applied("4.1.1", DEADLINE + timedelta(seconds=1)),)
    ),
    "applied right at publication": Case("on_time", (applied("4.1.1", PUBLISHED),)),
    "never applied": Case("not_yet"),
    "applied only an older release since": Case(
        "not_yet", (applied("4.1.0", DEADLINE - timedelta(hours=1), "4.0.0"),)
    ),
    "a newer release applied in time counts": Case(
        "on_time", (applied("4.2.0", DEADLINE - timedelta(hours=1)),)
    ),
    "the earliest of several applies decides": Case(
        "on_time",
        (
            applied("4.1.1", DEADLINE + timedelta(days=2)),
            applied("4.2.0", DEADLINE - timedelta(minutes=5)),
        ),
    ),
    "an apply from an unknown version counts": Case(
        "late", (applied("4.1.1", DEADLINE + timedelta(hours=1), None),)
    ),
    "already newer, no report since: not expected": Case(
        "excluded", inst=installation(version=Version("4.2.0"))
    ),
    "moved between newer releases: not expected": Case(
        "excluded",
        (applied("4.3.0", DEADLINE + timedelta(days=3), "4.2.0"),),
        inst=installation(version=Version("4.3.0")),
    ),
    "a suspended license is not expected": Case(
        "excluded", lic=replace(COVERED, status="suspended")
    ),
    "a revoked license is not expected": Case("excluded", lic=replace(COVERED, status="revoked")),
    "lapsed before publication: not entitled": Case(
        "excluded", lic=license_of(maintenance("2025-01-01", "2026-04-30"))
    ),
    "no maintenance at all: not entitled": Case("excluded", lic=license_of()),
    "lapsing between publication and deadline: still expected": Case(
        "not_yet",
        lic=license_of(maintenance("2025-05-05", "2026-05-04")),  # covered until May 5 00:00
        revision=security("4.1.1", PUBLISHED, "serious"),  # deadline May 5 09:00
    ),
    "lapsed since the deadline: still expected": Case(
        "not_yet", lic=license_of(maintenance("2025-05-05", "2026-05-10"))
    ),
    "renewed only after the deadline: not expected then": Case(
        "excluded",
        lic=license_of(
            maintenance("2025-01-01", "2026-04-30"), maintenance("2026-05-10", "2027-05-09")
        ),
    ),
    "another customer's build": Case(
        "excluded", revision=security("4.1.1", PUBLISHED, "critical", customers=("globex",))
    ),
    "own customized build under a customization contract": Case(
        "not_yet",
        lic=license_of(
            maintenance("2026-01-01", "2026-12-31"),
            customization("2026-01-01", "2026-12-31"),
            customer="globex",
        ),
        revision=security("4.1.1", PUBLISHED, "critical", customers=("globex",)),
    ),
    "a beta installation gets stable revisions": Case("not_yet", inst=installation(channel="beta")),
    "a stable installation is not expected on a private channel": Case(
        "excluded", revision=security("4.1.1", PUBLISHED, "critical", channel="globex")
    ),
    "no artifact for its platform": Case("excluded", inst=installation(platform="windows-x86_64")),
    "an artifact for any platform": Case(
        "not_yet",
        inst=installation(platform="windows-x86_64"),
        revision=security("4.1.1", PUBLISHED, "critical", platforms=("any",)),
    ),
    "first seen after the deadline": Case(
        "excluded", inst=installation(first_seen=DEADLINE + timedelta(seconds=1))
    ),
    "first seen between publication and deadline": Case(
        "late",
        (applied("4.1.1", DEADLINE + timedelta(hours=3)),),
        inst=installation(first_seen=PUBLISHED + timedelta(hours=2)),
    ),
    "silent since before publication": Case(
        "excluded", inst=installation(last_seen=PUBLISHED - timedelta(seconds=1))
    ),
    "an unreadable installed version is not judged": Case(
        "excluded", inst=installation(version=None)
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_one_installation(case: Case) -> None:
    result = adoption_of(
        case.revision,
        policy(),
        [case.inst],
        {LICENSE_ID: case.lic},
        {(LICENSE_ID, case.inst.uid): case.reports},
        NOW,
        releases=(OLDER, case.revision, NEWER),
    )
    outcome = {"on_time": result.on_time, "late": result.late, "not_yet": result.not_yet}
    if case.expected == "excluded":
        assert result.expected == 0, outcome
    else:
        assert result.expected == 1
        assert outcome[case.expected] == 1, outcome


def population(
    on_time: int, late: int, not_yet: int
) -> tuple[list[InstallationFacts], dict[tuple[int, str], list[AppliedFacts]]]:
    """Installations of one license: ``on_time`` applied by the deadline, ``late`` after it."""
    insts = [installation(uid=f"installation-{i:04d}") for i in range(on_time + late + not_yet)]
    reports: dict[tuple[int, str], list[AppliedFacts]] = {}
    for i, inst in enumerate(insts):
        if i < on_time:
            reports[(LICENSE_ID, inst.uid)] = [applied("4.1.1", DEADLINE - timedelta(hours=1))]
        elif i < on_time + late:
            reports[(LICENSE_ID, inst.uid)] = [applied("4.1.1", DEADLINE + timedelta(hours=1))]
    return insts, reports


@pytest.mark.parametrize(
    ("on_time", "late", "not_yet", "status", "share"),
    [
        (19, 1, 0, "met", 0.95),  # exactly the target
        (18, 1, 1, "missed", 0.90),
        (20, 0, 0, "met", 1.0),
        (0, 0, 0, "none-expected", None),
    ],
)
def test_share_and_target(
    on_time: int, late: int, not_yet: int, status: str, share: float | None
) -> None:
    insts, reports = population(on_time, late, not_yet)
    result = adoption_of(R, policy(), insts, {LICENSE_ID: COVERED}, reports, NOW, releases=HISTORY)
    assert (result.expected, result.on_time, result.late, result.not_yet) == (
        on_time + late + not_yet,
        on_time,
        late,
        not_yet,
    )
    assert result.share == share
    assert result.status == status


def test_in_progress_until_the_deadline_passes() -> None:
    insts, reports = population(1, 0, 3)
    during = adoption_of(
        R, policy(), insts, {LICENSE_ID: COVERED}, reports, DEADLINE - timedelta(seconds=1)
    )
    assert during.status == "in-progress"
    assert (during.on_time, during.not_yet) == (1, 3)
    at_deadline = adoption_of(R, policy(), insts, {LICENSE_ID: COVERED}, reports, DEADLINE)
    assert at_deadline.status == "missed"


def test_the_products_own_deadline_is_used() -> None:
    strict = policy(severity_deadlines={"critical": 2, "serious": 12, "minor": 48})
    reports = {
        (LICENSE_ID, "installation-0001"): [applied("4.1.1", PUBLISHED + timedelta(hours=3))]
    }
    result = adoption_of(R, strict, [installation()], {LICENSE_ID: COVERED}, reports, NOW)
    assert result.deadline == PUBLISHED + timedelta(hours=2)
    assert result.deadline_hours == 2
    assert (result.on_time, result.late) == (0, 1)
    lenient = adoption_of(R, policy(), [installation()], {LICENSE_ID: COVERED}, reports, NOW)
    assert (lenient.on_time, lenient.late) == (1, 0)


@pytest.mark.parametrize(("severity", "hours"), [("critical", 8), ("serious", 24), ("minor", 72)])
def test_default_deadlines_by_severity(severity: str, hours: int) -> None:
    revision = security("4.1.1", PUBLISHED, severity)
    result = adoption_of(revision, policy(), [], {}, {}, NOW)
    assert result.deadline == PUBLISHED + timedelta(hours=hours)


def test_an_installation_whose_license_is_unknown_is_not_counted() -> None:
    result = adoption_of(R, policy(), [installation(license_id=99)], {LICENSE_ID: COVERED}, {}, NOW)
    assert result.expected == 0


def test_a_release_without_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="no severity deadline"):
        adoption_of(release("4.1.1", PUBLISHED, kind="security"), policy(), [], {}, {}, NOW)


def test_first_apply_since_ignores_applies_before_publication() -> None:
    before = applied("4.2.0", PUBLISHED - timedelta(seconds=1))
    after = applied("4.1.1", PUBLISHED + timedelta(hours=9))
    assert first_apply_since(R, [before, after]) == after
    assert first_apply_since(R, [before]) is None


@pytest.mark.parametrize(
    ("on_time", "expected", "percent"), [(29, 100, 29), (949, 1000, 94), (2, 3, 66), (0, 5, 0)]
)
def test_percent_is_rounded_down_in_whole_numbers(
    on_time: int, expected: int, percent: int
) -> None:
    insts, reports = population(on_time, 0, expected - on_time)
    result = adoption_of(R, policy(), insts, {LICENSE_ID: COVERED}, reports, NOW)
    assert result.percent == percent
