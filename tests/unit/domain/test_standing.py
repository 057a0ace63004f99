"""The portal's wording of a license's maintenance: one standing and one action per state, and
the installations' sentence never contradicting what renewal would bring."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from packaging.version import Version

from server.domain.coverage import maintenance_status
from server.domain.messages import _
from server.domain.offers import ReleaseIndex, RenewalSummary
from server.domain.standing import portal_status, refused_status, standing_of
from server.domain.vocabulary import LicenseStatus, PortalAction, Standing
from tests.common.facts import license_of, maintenance, policy, release, utc

NOW = utc(2026, 6, 1)


@dataclass(frozen=True)
class Case:
    contracts: tuple[tuple[str, str], ...]
    standing: Standing
    action: PortalAction
    tone: str
    license_status: str = "active"
    lapse_policy: str = "fallback"
    grace_days: int = 0


CASES = {
    "never bought": Case((), Standing.NEVER_COVERED, PortalAction.BUY, "alert"),
    "booked for later": Case(
        (("2026-07-01", "2027-06-30"),), Standing.NOT_STARTED, PortalAction.NONE, "ok"
    ),
    "active": Case((("2026-01-01", "2026-12-31"),), Standing.ACTIVE, PortalAction.NONE, "ok"),
    "expiring": Case(
        (("2025-06-15", "2026-06-14"),), Standing.EXPIRING, PortalAction.RENEW, "warning"
    ),
    "grace": Case(
        (("2025-05-01", "2026-05-20"),),
        Standing.GRACE,
        PortalAction.RENEW,
        "warning",
        grace_days=30,
    ),
    "lapsed": Case((("2024-01-01", "2024-12-31"),), Standing.LAPSED, PortalAction.RENEW, "alert"),
    "lapsed, revoke policy": Case(
        (("2024-01-01", "2024-12-31"),),
        Standing.LAPSED_NO_DOWNLOADS,
        PortalAction.RENEW,
        "alert",
        lapse_policy="revoke",
    ),
    "suspended": Case(
        (("2026-01-01", "2026-12-31"),),
        Standing.SUSPENDED,
        PortalAction.CONTACT,
        "alert",
        license_status="suspended",
    ),
    "revoked": Case((), Standing.REVOKED, PortalAction.CONTACT, "alert", license_status="revoked"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_state_has_one_standing_one_action_and_a_tone(name: str) -> None:
    case = CASES[name]
    lic = license_of(*(maintenance(s, e) for s, e in case.contracts), status=case.license_status)
    product = policy(lapse_policy=case.lapse_policy, grace_days=case.grace_days)
    status = maintenance_status(lic, product, NOW)
    assert standing_of(LicenseStatus(case.license_status), status, product) == case.standing
    shown = portal_status(LicenseStatus(case.license_status), status, product)
    assert (shown.standing, shown.action, shown.tone) == (case.standing, case.action, case.tone)
    assert str(shown.title) and str(shown.message)


def test_every_standing_is_in_the_table() -> None:
    assert {c.standing for c in CASES.values()} == set(Standing)


def _missing(newest: str | None) -> RenewalSummary:
    return RenewalSummary(Version(newest) if newest else None, 1, 0, 0, _("Renew to get more."))


@pytest.mark.parametrize(
    ("installed", "covered_newer", "renewal", "says"),
    [
        ((), False, None, None),  # nothing reported: nothing said
        (("2.0",), True, None, None),  # the page lists what is new for them
        (("2.0",), False, None, "Your installations are up to date."),
        (("2.0",), False, _missing("3.0"), "newer releases need maintenance"),
        (("1.0", "3.0"), False, _missing("3.0"), "newer releases need maintenance"),
        (("3.0",), False, _missing("3.0"), "Your installations are up to date."),
        (("2.0",), False, _missing(None), "Your installations are up to date."),  # a reminder
    ],
)
def test_up_to_date_only_when_nothing_newer_exists_with_maintenance_or_without(
    installed: tuple[str, ...],
    covered_newer: bool,
    renewal: RenewalSummary | None,
    says: str | None,
) -> None:
    lic = license_of(maintenance("2024-01-01", "2024-12-31"))
    status = maintenance_status(lic, policy(), NOW)
    shown = portal_status(
        LicenseStatus.ACTIVE,
        status,
        policy(),
        renewal=renewal,
        installed=[Version(v) for v in installed],
        covered_newer=covered_newer,
    )
    if says is None:
        assert shown.installations is None
    else:
        assert shown.installations is not None and says in str(shown.installations)
    assert (shown.missing is not None) == bool(renewal and renewal.newest_version)


def test_an_end_of_life_line_names_the_way_off_it_or_the_action() -> None:
    index = ReleaseIndex.of(
        [
            release("3.9.0", utc(2024, 1, 1), line="3.x", line_status="end-of-life"),
            release("4.0.0", utc(2025, 1, 1), line="4.x"),
        ]
    )
    never = maintenance_status(license_of(), policy(), NOW)
    installed = [Version("3.9.0"), Version("3.9.0")]
    bought = portal_status(
        LicenseStatus.ACTIVE, never, policy(), installed=installed, index=index, way_out=None
    )
    assert [str(n) for n in bought.notices] == [
        "3.x is no longer supported. Buy maintenance to move to a supported version."
    ]
    active = maintenance_status(license_of(maintenance("2026-01-01", "2026-12-31")), policy(), NOW)
    shown = portal_status(
        LicenseStatus.ACTIVE,
        active,
        policy(),
        installed=installed,
        index=index,
        way_out=Version("4.0.0"),
    )
    assert [str(n) for n in shown.notices] == [
        "3.x is no longer supported. Update to 4.0.0 to stay supported."
    ]
    lapsed = maintenance_status(license_of(maintenance("2023-01-01", "2023-06-30")), policy(), NOW)
    renew = portal_status(
        LicenseStatus.ACTIVE,
        lapsed,
        policy(),
        installed=installed,
        index=index,
        way_out=Version("3.9.0"),  # the newest it may have is on the dead line itself
    )
    assert "Renew maintenance to move to a supported version." in str(renew.notices[0])


def test_a_refused_license_is_told_to_contact_the_vendor() -> None:
    for status in (LicenseStatus.SUSPENDED, LicenseStatus.REVOKED):
        shown = refused_status(status)
        assert shown.action == PortalAction.CONTACT
        assert "Contact your vendor" in str(shown.message)
        assert shown.missing is None and shown.installations is None
