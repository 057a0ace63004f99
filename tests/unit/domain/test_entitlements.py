"""The entitlement rules (DESIGN.md rules 1–6, 8) as named-case tables, with their boundaries.

Pure functions, so no database and no clock: facts in, status or decision out, ``now`` given.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from server.domain import entitlements
from server.domain.coverage import (
    MaintenanceStatus,
    add_months,
    covered_periods,
    maintenance_status,
)
from server.domain.entitlements import (
    customization_allows,
    decide,
    may_be_entitled,
    owned_lines,
)
from server.domain.facts import LicenseFacts, ProductPolicy, ReleaseFacts
from tests.common.facts import (
    PRODUCT,
    customization,
    license_of,
    local,
    maintenance,
    policy,
    release,
    security,
    utc,
)

NY = "America/New_York"
AKL = "Pacific/Auckland"
NOW = "now"  # the expected cutoff is ``now`` itself

Y2026 = maintenance("2026-01-01", "2026-12-31")
Y2025 = maintenance("2025-01-01", "2025-12-31")
LAPSED_2026 = license_of(Y2026)
LAPSE = utc(2027, 1, 1, 0)  # the end of 2026's cover in UTC: the lapsed cutoff
DEFAULT = policy()


# --------------------------------------------------------------------------- status and cutoff


@dataclass(frozen=True)
class StatusCase:
    license: LicenseFacts
    now: datetime
    status: str
    ends_on: str | None
    cutoff: datetime | str | None  # NOW: the cutoff is ``now``
    policy: ProductPolicy = DEFAULT


STATUS_CASES: dict[str, StatusCase] = {
    # rule 2: active and expiring, and the warning window's edges
    "active-mid-contract": StatusCase(LAPSED_2026, utc(2026, 6, 1), "active", "2026-12-31", NOW),
    "active-first-second-of-first-day": StatusCase(
        LAPSED_2026, utc(2026, 1, 1, 0), "active", "2026-12-31", NOW
    ),
    "none-last-second-before-start": StatusCase(
        LAPSED_2026, utc(2025, 12, 31, 23, 59, 59), "none", None, None
    ),
    "active-last-second-before-window": StatusCase(
        LAPSED_2026, utc(2026, 12, 1, 23, 59, 59), "active", "2026-12-31", NOW
    ),
    "expiring-first-second-of-window": StatusCase(
        LAPSED_2026, utc(2026, 12, 2, 0), "expiring", "2026-12-31", NOW
    ),
    "expiring-inside-window": StatusCase(
        LAPSED_2026, utc(2026, 12, 20), "expiring", "2026-12-31", NOW
    ),
    "expiring-window-0-never-warns": StatusCase(
        LAPSED_2026,
        utc(2026, 12, 31, 23),
        "active",
        "2026-12-31",
        NOW,
        policy(expiring_window_days=0),
    ),
    "expiring-window-60-days": StatusCase(
        LAPSED_2026,
        utc(2026, 11, 2, 0),
        "expiring",
        "2026-12-31",
        NOW,
        policy(expiring_window_days=60),
    ),
    # rule 3: the day maintenance ends is covered all day; the day after is not
    "last-day-last-second-covered": StatusCase(
        LAPSED_2026, utc(2026, 12, 31, 23, 59, 59), "expiring", "2026-12-31", NOW
    ),
    "day-after-first-second-lapsed": StatusCase(
        LAPSED_2026, utc(2027, 1, 1, 0), "lapsed", "2026-12-31", LAPSE
    ),
    "lapsed-months-later-keeps-cutoff": StatusCase(
        LAPSED_2026, utc(2027, 6, 1), "lapsed", "2026-12-31", LAPSE
    ),
    "leap-day-end-covered-all-day": StatusCase(
        license_of(maintenance("2027-03-01", "2028-02-29")),
        utc(2028, 2, 29, 23, 59, 59),
        "expiring",
        "2028-02-29",
        NOW,
    ),
    "leap-day-end-lapses-on-march-1": StatusCase(
        license_of(maintenance("2027-03-01", "2028-02-29")),
        utc(2028, 3, 1, 0),
        "lapsed",
        "2028-02-29",
        utc(2028, 3, 1, 0),
    ),
    # the vendor's zone: days begin and end there
    "new-york-last-local-second-covered": StatusCase(
        LAPSED_2026,
        local(NY, 2026, 12, 31, 23, 59, 59),
        "expiring",
        "2026-12-31",
        NOW,
        policy(timezone=NY),
    ),
    "new-york-covered-when-utc-is-already-next-day": StatusCase(
        LAPSED_2026, utc(2027, 1, 1, 3), "expiring", "2026-12-31", NOW, policy(timezone=NY)
    ),
    "new-york-local-midnight-lapses": StatusCase(
        LAPSED_2026,
        local(NY, 2027, 1, 1),
        "lapsed",
        "2026-12-31",
        utc(2027, 1, 1, 5),
        policy(timezone=NY),
    ),
    "new-york-first-day-starts-at-local-midnight": StatusCase(
        LAPSED_2026, utc(2026, 1, 1, 5), "active", "2026-12-31", NOW, policy(timezone=NY)
    ),
    "new-york-not-yet-started-at-utc-midnight": StatusCase(
        LAPSED_2026, utc(2026, 1, 1, 4, 59, 59), "none", None, None, policy(timezone=NY)
    ),
    "auckland-last-local-second-covered": StatusCase(
        LAPSED_2026,
        local(AKL, 2026, 12, 31, 23, 59, 59),
        "expiring",
        "2026-12-31",
        NOW,
        policy(timezone=AKL),
    ),
    "auckland-local-midnight-lapses": StatusCase(
        LAPSED_2026,
        local(AKL, 2027, 1, 1),
        "lapsed",
        "2026-12-31",
        utc(2026, 12, 31, 11),
        policy(timezone=AKL),
    ),
    "auckland-lapsed-while-utc-is-still-dec-31": StatusCase(
        LAPSED_2026,
        utc(2026, 12, 31, 12),
        "lapsed",
        "2026-12-31",
        utc(2026, 12, 31, 11),
        policy(timezone=AKL),
    ),
    "new-york-grace-over-a-23-hour-dst-day": StatusCase(
        license_of(maintenance("2025-03-08", "2026-03-07")),
        utc(2026, 3, 9, 3, 59, 59),  # 23:59:59 EDT on 2026-03-08, the day clocks spring forward
        "grace",
        "2026-03-07",
        NOW,
        policy(timezone=NY, grace_days=1),
    ),
    "new-york-grace-ends-at-local-midnight-after-dst": StatusCase(
        license_of(maintenance("2025-03-08", "2026-03-07")),
        utc(2026, 3, 9, 4),  # 00:00 EDT on 2026-03-09
        "lapsed",
        "2026-03-07",
        utc(2026, 3, 8, 5),  # 00:00 EST on 2026-03-08
        policy(timezone=NY, grace_days=1),
    ),
    # grace: 0 days (the default) vs 14
    "grace-0-day-after-is-lapsed": StatusCase(
        LAPSED_2026, utc(2027, 1, 1, 0), "lapsed", "2026-12-31", LAPSE, policy(grace_days=0)
    ),
    "grace-14-first-second": StatusCase(
        LAPSED_2026, utc(2027, 1, 1, 0), "grace", "2026-12-31", NOW, policy(grace_days=14)
    ),
    "grace-14-last-second": StatusCase(
        LAPSED_2026,
        utc(2027, 1, 14, 23, 59, 59),
        "grace",
        "2026-12-31",
        NOW,
        policy(grace_days=14),
    ),
    "grace-14-over-cutoff-is-contract-end": StatusCase(
        LAPSED_2026, utc(2027, 1, 15, 0), "lapsed", "2026-12-31", LAPSE, policy(grace_days=14)
    ),
    # which contracts count, and merging
    "never-bought": StatusCase(license_of(), utc(2026, 6, 1), "none", None, None),
    "future-dated-contract-does-not-cover-now": StatusCase(
        license_of(maintenance("2027-01-01", "2027-12-31")), utc(2026, 6, 1), "none", None, None
    ),
    "contract-for-another-product": StatusCase(
        license_of(maintenance("2026-01-01", "2026-12-31", "other")),
        utc(2026, 6, 1),
        "none",
        None,
        None,
    ),
    "all-products-contract": StatusCase(
        license_of(maintenance("2026-01-01", "2026-12-31", None)),
        utc(2026, 6, 1),
        "active",
        "2026-12-31",
        NOW,
    ),
    "customization-is-not-maintenance": StatusCase(
        license_of(customization("2026-01-01", "2026-12-31")), utc(2026, 6, 1), "none", None, None
    ),
    "one-day-contract-covers-its-day": StatusCase(
        license_of(maintenance("2026-06-01", "2026-06-01")),
        utc(2026, 6, 1, 12),
        "expiring",
        "2026-06-01",
        NOW,
    ),
    "inverted-contract-ignored": StatusCase(
        license_of(maintenance("2026-12-31", "2026-01-01")), utc(2026, 6, 1), "none", None, None
    ),
    "adjacent-contracts-merge-no-warning": StatusCase(
        license_of(Y2025, Y2026), utc(2025, 12, 20), "active", "2026-12-31", NOW
    ),
    "all-products-and-product-contracts-merge": StatusCase(
        license_of(maintenance("2025-01-01", "2025-12-31", None), Y2026),
        utc(2025, 12, 20),
        "active",
        "2026-12-31",
        NOW,
    ),
    "overlapping-contracts-merge": StatusCase(
        license_of(maintenance("2025-01-01", "2026-03-31"), Y2026),
        utc(2026, 2, 1),
        "active",
        "2026-12-31",
        NOW,
    ),
    "contract-inside-a-longer-one": StatusCase(
        license_of(maintenance("2025-01-01", "2027-12-31"), Y2026),
        utc(2027, 6, 1),
        "active",
        "2027-12-31",
        NOW,
    ),
    "one-day-gap-does-not-merge": StatusCase(
        license_of(Y2025, maintenance("2026-01-02", "2026-12-31")),
        utc(2025, 12, 20),
        "expiring",
        "2025-12-31",
        NOW,
    ),
    "inside-the-gap-is-lapsed": StatusCase(
        license_of(Y2025, maintenance("2026-03-01", "2027-02-28")),
        utc(2026, 2, 1),
        "lapsed",
        "2025-12-31",
        utc(2026, 1, 1, 0),
    ),
    "renewed-after-lapse-is-active": StatusCase(
        license_of(Y2025, maintenance("2026-03-01", "2027-02-28")),
        utc(2026, 3, 1, 0),
        "active",
        "2027-02-28",
        NOW,
    ),
    "second-contract-lapsed-cutoff-is-its-end": StatusCase(
        license_of(Y2025, maintenance("2026-03-01", "2027-02-28")),
        utc(2027, 6, 1),
        "lapsed",
        "2027-02-28",
        utc(2027, 3, 1, 0),
    ),
    # rule 1: the license itself
    "suspended-license": StatusCase(
        license_of(Y2026, status="suspended"), utc(2026, 6, 1), "none", None, None
    ),
    "revoked-license": StatusCase(
        license_of(Y2026, status="revoked"), utc(2026, 6, 1), "none", None, None
    ),
    "license-for-another-product": StatusCase(
        license_of(Y2026, product="other"), utc(2026, 6, 1), "none", None, None
    ),
}


@pytest.mark.parametrize("case", STATUS_CASES.values(), ids=STATUS_CASES.keys())
def test_maintenance_status_and_cutoff(case: StatusCase) -> None:
    result = maintenance_status(case.license, case.policy, case.now)
    assert result.status == case.status
    expected_ends = date.fromisoformat(case.ends_on) if case.ends_on else None
    assert result.maintenance_ends_on == expected_ends
    assert result.cutoff == (case.now if case.cutoff == NOW else case.cutoff)
    assert result.cutoff is None or result.cutoff.tzinfo is UTC
    assert result.message


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DecisionCase:
    license: LicenseFacts
    release: ReleaseFacts
    now: datetime
    entitled: bool
    offerable: bool | None = None  # None: the same as entitled
    policy: ProductPolicy = DEFAULT
    owned: frozenset[str] | None = None
    catalog: tuple[ReleaseFacts, ...] = field(default_factory=tuple)
    reason: str = ""  # a fragment the first reason must contain


AFTER = utc(2027, 6, 1)  # well after 2026's cover ended
DURING = utc(2026, 6, 1)
CARVE = policy(security_carveout_months=3)
OWN_1X = frozenset({"1.x"})
CUSTOM_2026 = customization("2026-01-01", "2026-12-31")
INITECH_BUILD = release("1.5+initech.1", utc(2026, 5, 1), customers={"initech"})

DECISION_CASES: dict[str, DecisionCase] = {
    # rule 1
    "suspended-gets-nothing": DecisionCase(
        license_of(Y2026, status="suspended"),
        release("1.0", utc(2026, 2, 1)),
        DURING,
        False,
        reason="suspended",
    ),
    "revoked-gets-nothing": DecisionCase(
        license_of(Y2026, status="revoked"),
        release("1.0", utc(2026, 2, 1)),
        DURING,
        False,
        reason="revoked",
    ),
    "release-of-another-product": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1), product="other"),
        DURING,
        False,
        reason="another product",
    ),
    "license-for-another-product": DecisionCase(
        license_of(Y2026, product="other"),
        release("1.0", utc(2026, 2, 1)),
        DURING,
        False,
        reason="another product",
    ),
    # rule 3: perpetual fallback
    "active-gets-newest": DecisionCase(
        LAPSED_2026, release("2.0", utc(2026, 5, 1)), DURING, True, reason="active"
    ),
    "active-release-published-this-instant": DecisionCase(
        LAPSED_2026, release("2.0", DURING), DURING, True
    ),
    "not-yet-published": DecisionCase(
        LAPSED_2026, release("2.0", DURING + timedelta(seconds=1)), DURING, False
    ),
    "expiring-gets-newest": DecisionCase(
        LAPSED_2026, release("2.0", utc(2026, 12, 20)), utc(2026, 12, 21), True
    ),
    "lapsed-keeps-last-covered-second": DecisionCase(
        LAPSED_2026, release("1.9", utc(2026, 12, 31, 23, 59, 59)), AFTER, True, reason="lapsed"
    ),
    "lapsed-not-first-second-after": DecisionCase(
        LAPSED_2026, release("2.0", LAPSE), AFTER, False, reason="after maintenance ended"
    ),
    "lapsed-keeps-security-revision-of-its-time": DecisionCase(
        LAPSED_2026, security("1.8.1", utc(2026, 3, 1), "critical"), AFTER, True
    ),
    "lapsed-keeps-release-from-before-the-contract": DecisionCase(
        LAPSED_2026, release("1.0", utc(2024, 1, 1)), AFTER, True
    ),
    "new-york-lapsed-keeps-local-23-59": DecisionCase(
        LAPSED_2026,
        release("1.9", local(NY, 2026, 12, 31, 23, 59)),
        AFTER,
        True,
        policy=policy(timezone=NY),
    ),
    "new-york-lapsed-not-local-midnight": DecisionCase(
        LAPSED_2026,
        release("2.0", local(NY, 2027, 1, 1)),
        AFTER,
        False,
        policy=policy(timezone=NY),
    ),
    "auckland-lapsed-not-utc-dec-31-noon": DecisionCase(
        LAPSED_2026,
        release("2.0", utc(2026, 12, 31, 12)),  # 01:00 on Jan 1 in Auckland
        AFTER,
        False,
        policy=policy(timezone=AKL),
    ),
    "grace-14-gets-release-after-end": DecisionCase(
        LAPSED_2026,
        release("2.0", utc(2027, 1, 5)),
        utc(2027, 1, 10),
        True,
        policy=policy(grace_days=14),
        reason="grace",
    ),
    "grace-0-day-after-misses-it": DecisionCase(
        LAPSED_2026, release("2.0", utc(2027, 1, 1, 0, 30)), utc(2027, 1, 1, 1), False
    ),
    "never-bought-gets-nothing": DecisionCase(
        license_of(),
        release("1.0", utc(2020, 1, 1)),
        DURING,
        False,
        reason="no maintenance",
    ),
    "future-contract-gives-nothing-yet": DecisionCase(
        license_of(maintenance("2027-01-01", "2027-12-31")),
        release("1.0", utc(2020, 1, 1)),
        DURING,
        False,
    ),
    "all-products-contract-entitles": DecisionCase(
        license_of(maintenance("2026-01-01", "2026-12-31", None)),
        release("2.0", utc(2026, 5, 1)),
        DURING,
        True,
    ),
    "contract-for-another-product-does-not": DecisionCase(
        license_of(maintenance("2026-01-01", "2026-12-31", "other")),
        release("2.0", utc(2026, 5, 1)),
        DURING,
        False,
    ),
    # gaps and rule 8: renewal restores everything at once
    "in-gap-release-published-in-gap-not-entitled": DecisionCase(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")),
        release("2.0", utc(2026, 2, 1)),
        utc(2026, 3, 1),
        False,
    ),
    "in-gap-release-from-before-gap-entitled": DecisionCase(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")),
        release("1.9", utc(2025, 12, 1)),
        utc(2026, 3, 1),
        True,
    ),
    "renewal-restores-gap-release": DecisionCase(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")),
        release("2.0", utc(2026, 2, 1)),
        utc(2026, 6, 1, 0),
        True,
    ),
    "gap-release-stays-after-renewal-lapses": DecisionCase(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")),
        release("2.0", utc(2026, 2, 1)),
        utc(2028, 1, 1),
        True,
    ),
    "after-renewal-lapses-later-release-not-entitled": DecisionCase(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")),
        release("3.0", utc(2027, 6, 1, 0)),
        utc(2028, 1, 1),
        False,
    ),
    # rule 6: lapse policy "revoke"
    "revoke-lapsed-gets-nothing-not-even-old": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1)),
        AFTER,
        False,
        policy=policy(lapse_policy="revoke"),
        reason="revokes",
    ),
    "revoke-grace-still-entitled": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1)),
        utc(2027, 1, 5),
        True,
        policy=policy(lapse_policy="revoke", grace_days=14),
    ),
    "revoke-active-unaffected": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1)),
        DURING,
        True,
        policy=policy(lapse_policy="revoke"),
    ),
    # rule 6: security carve-out
    "carve-out-security-of-owned-line": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        owned=OWN_1X,
        reason="security carve-out of 3 months after the lapse",
    ),
    "carve-out-of-one-month": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 1, 31, 23, 59, 59), line="1.x"),
        AFTER,
        True,
        policy=policy(security_carveout_months=1),
        owned=OWN_1X,
    ),
    "carve-out-yanked-entitled-not-offerable": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x", yanked=True),
        AFTER,
        True,
        offerable=False,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-first-second-after-lapse": DecisionCase(
        LAPSED_2026,
        security("1.9.1", LAPSE, line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-last-second-of-window": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 3, 31, 23, 59, 59), line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-ends-after-n-months": DecisionCase(
        LAPSED_2026,
        security("1.9.2", utc(2027, 4, 1, 0), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-window-in-auckland": DecisionCase(
        LAPSED_2026,
        security("1.9.1", local(AKL, 2027, 3, 31, 23, 59, 59), line="1.x"),
        AFTER,
        True,
        policy=policy(security_carveout_months=3, timezone=AKL),
        owned=OWN_1X,
    ),
    "carve-out-window-over-in-auckland": DecisionCase(
        LAPSED_2026,
        security("1.9.2", local(AKL, 2027, 4, 1), line="1.x"),
        AFTER,
        False,
        policy=policy(security_carveout_months=3, timezone=AKL),
        owned=OWN_1X,
    ),
    "carve-out-not-for-another-line": DecisionCase(
        LAPSED_2026,
        security("2.0.1", utc(2027, 2, 1), line="2.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=OWN_1X,
        reason="published after maintenance ended",
    ),
    "carve-out-not-for-another-line-under-revoke": DecisionCase(
        LAPSED_2026,
        security("2.0.1", utc(2027, 2, 1), line="2.x"),
        AFTER,
        False,
        policy=policy(security_carveout_months=3, lapse_policy="revoke"),
        owned=OWN_1X,
        reason="maintenance lapsed and the product's lapse policy revokes downloads",
    ),
    "carve-out-not-for-updates": DecisionCase(
        LAPSED_2026,
        release("1.10", utc(2027, 2, 1), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-off-by-default": DecisionCase(
        LAPSED_2026, security("1.9.1", utc(2027, 2, 1), line="1.x"), AFTER, False, owned=OWN_1X
    ),
    "carve-out-also-under-revoke": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), "minor", line="1.x"),
        AFTER,
        True,
        policy=policy(security_carveout_months=3, lapse_policy="revoke"),
        owned=OWN_1X,
    ),
    "carve-out-not-before-publication": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        utc(2027, 1, 20),
        False,
        policy=CARVE,
        owned=OWN_1X,
    ),
    "carve-out-owned-lines-from-the-catalog": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        catalog=(release("1.9", utc(2026, 5, 1)),),
    ),
    "carve-out-line-owned-through-a-customized-build": DecisionCase(
        license_of(Y2026, CUSTOM_2026),
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        True,
        policy=CARVE,
        catalog=(INITECH_BUILD,),
    ),
    "carve-out-catalog-without-the-line": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        catalog=(release("2.0", utc(2027, 1, 10)),),
    ),
    "carve-out-without-owned-lines-or-catalog-grants-nothing": DecisionCase(
        LAPSED_2026,
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
    ),
    "carve-out-never-for-the-never-covered": DecisionCase(
        license_of(),
        security("1.9.1", utc(2027, 2, 1), line="1.x"),
        AFTER,
        False,
        policy=CARVE,
        owned=OWN_1X,
    ),
    # rule 4: customized builds
    "custom-build-covered": DecisionCase(
        license_of(Y2026, CUSTOM_2026), INITECH_BUILD, DURING, True
    ),
    "custom-build-for-several-customers": DecisionCase(
        license_of(Y2026, CUSTOM_2026),
        release("1.5+multi.1", utc(2026, 5, 1), customers={"globex", "initech"}),
        DURING,
        True,
    ),
    "custom-build-all-products-customization": DecisionCase(
        license_of(Y2026, customization("2026-01-01", "2026-12-31", None)),
        INITECH_BUILD,
        DURING,
        True,
    ),
    "custom-build-without-customization-contract": DecisionCase(
        LAPSED_2026, INITECH_BUILD, DURING, False, reason="customization"
    ),
    "custom-build-customization-for-another-product": DecisionCase(
        license_of(Y2026, customization("2026-01-01", "2026-12-31", "other")),
        INITECH_BUILD,
        DURING,
        False,
    ),
    "custom-build-published-after-customization-ended": DecisionCase(
        license_of(Y2026, customization("2026-01-01", "2026-03-31")),
        release("1.5+initech.1", utc(2026, 4, 1, 0), customers={"initech"}),
        DURING,
        False,
    ),
    "custom-build-published-before-customization-began": DecisionCase(
        license_of(Y2026, customization("2026-06-01", "2026-12-31")),
        INITECH_BUILD,
        utc(2026, 7, 1),
        False,
    ),
    "custom-build-of-another-customer": DecisionCase(
        license_of(Y2026, CUSTOM_2026),
        release("1.5+globex.1", utc(2026, 5, 1), customers={"globex"}),
        DURING,
        False,
        reason="other customers",
    ),
    "custom-build-kept-after-both-lapse": DecisionCase(
        license_of(Y2026, CUSTOM_2026), INITECH_BUILD, AFTER, True
    ),
    "custom-build-needs-maintenance-too": DecisionCase(
        license_of(Y2026, customization("2026-01-01", "2027-12-31")),
        release("2.0+initech.1", utc(2027, 3, 1), customers={"initech"}),
        AFTER,
        False,
    ),
    # rule 5: yanked
    "yanked-entitled-not-offerable": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1), yanked=True),
        DURING,
        True,
        offerable=False,
    ),
    "yanked-after-cutoff-neither": DecisionCase(
        LAPSED_2026, release("2.0", utc(2027, 2, 1), yanked=True), AFTER, False
    ),
    "yanked-on-end-of-life-line-still-downloadable": DecisionCase(
        LAPSED_2026,
        release("1.0", utc(2026, 2, 1), yanked=True, line_status="end-of-life"),
        AFTER,
        True,
        offerable=False,
    ),
    # rule 7 is about offers, not downloads: a lifecycle never takes a download away
    "end-of-life-line-still-entitled": DecisionCase(
        LAPSED_2026, release("1.0", utc(2026, 2, 1), line_status="end-of-life"), AFTER, True
    ),
}


@pytest.mark.parametrize("case", DECISION_CASES.values(), ids=DECISION_CASES.keys())
def test_decide(case: DecisionCase) -> None:
    decision = decide(
        case.license,
        case.policy,
        case.release,
        case.now,
        owned_lines=case.owned,
        releases=case.catalog,
    )
    assert decision.entitled is case.entitled, decision.reasons
    expected_offerable = case.entitled if case.offerable is None else case.offerable
    assert decision.offerable is expected_offerable
    assert decision.reasons
    assert case.reason in decision.reasons[0]


def test_the_tables_are_large_enough_to_be_exhaustive() -> None:
    assert len(STATUS_CASES) + len(DECISION_CASES) >= 90


# --------------------------------------------------------------------------- focused tests


def test_precomputed_status_gives_the_same_decisions() -> None:
    for case in DECISION_CASES.values():
        status = maintenance_status(case.license, case.policy, case.now)
        given, worked_out = (
            decide(
                case.license,
                case.policy,
                case.release,
                case.now,
                owned_lines=case.owned,
                releases=case.catalog,
                status=precomputed,
            )
            for precomputed in (status, None)
        )
        assert given == worked_out


def test_may_be_entitled_never_rules_out_an_entitled_release() -> None:
    ruled_out = 0
    for name, case in DECISION_CASES.items():
        status = maintenance_status(case.license, case.policy, case.now)
        decision = decide(
            case.license,
            case.policy,
            case.release,
            case.now,
            owned_lines=case.owned,
            releases=case.catalog,
            status=status,
        )
        if not may_be_entitled(status, case.release):
            assert not decision.entitled, name
            ruled_out += 1
    assert ruled_out >= 10, "the shortcut is exercised, not vacuous"


def test_now_in_another_zone_is_the_same_instant() -> None:
    now = utc(2026, 12, 31, 12)
    in_auckland = now.astimezone(ZoneInfo(AKL))
    for zone in ("UTC", NY, AKL):
        p = policy(timezone=zone)
        status = maintenance_status(LAPSED_2026, p, in_auckland)
        assert status == maintenance_status(LAPSED_2026, p, now)
        assert status.cutoff is not None and status.cutoff.tzinfo is UTC, "reported in UTC"


def test_naive_now_is_refused() -> None:
    naive = datetime(2026, 6, 1, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        maintenance_status(LAPSED_2026, DEFAULT, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(LAPSED_2026, DEFAULT, release("1.0", utc(2026, 1, 5)), naive)


def test_facts_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="lapse policy"):
        policy(lapse_policy="forever")
    for days_or_months in ("grace_days", "expiring_window_days", "security_carveout_months"):
        with pytest.raises(ValueError, match=">= 0"):
            policy(**{days_or_months: -1})
    with pytest.raises(ZoneInfoNotFoundError):
        policy(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="timezone-aware"):
        release("1.0", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        release("1.0", utc(2026, 1, 1), rollout=101)


def test_lapsed_status_carries_the_lapse_and_carve_out() -> None:
    status = maintenance_status(LAPSED_2026, CARVE, utc(2027, 2, 1))
    assert status.lapsed_at == LAPSE
    assert status.carve_out_until == utc(2027, 4, 1, 0)
    assert "2027-03-31" in str(status.message), "the message says until when security continues"
    later = maintenance_status(LAPSED_2026, CARVE, utc(2027, 4, 1, 0))
    assert "Security" not in str(later.message), "nothing to promise once the carve-out is over"


@pytest.mark.parametrize(
    ("lapse_policy", "fragment"),
    [("fallback", "You keep every release"), ("revoke", "require active maintenance")],
    ids=["fallback-keeps", "revoke-says-so"],
)
def test_lapsed_message_follows_the_lapse_policy(lapse_policy: str, fragment: str) -> None:
    status = maintenance_status(LAPSED_2026, policy(lapse_policy=lapse_policy), AFTER)
    assert fragment in str(status.message)
    assert "2026-12-31" in str(status.message)


def test_messages_name_the_dates_a_customer_needs() -> None:
    grace = maintenance_status(LAPSED_2026, policy(grace_days=14), utc(2027, 1, 5))
    assert grace.grace_ends_on == date(2027, 1, 14)
    assert "2027-01-14" in str(grace.message)
    future = maintenance_status(
        license_of(maintenance("2027-01-01", "2027-12-31")), DEFAULT, DURING
    )
    assert future.next_starts_on == date(2027, 1, 1)
    assert "2027-01-01" in str(future.message)
    booked = maintenance_status(
        license_of(Y2025, maintenance("2026-06-01", "2027-05-31")), DEFAULT, utc(2026, 3, 1)
    )
    assert booked.status == "lapsed" and "2026-06-01" in str(booked.message)
    assert booked.next_starts_on == date(2026, 6, 1)
    assert "suspended" in str(
        maintenance_status(license_of(Y2026, status="suspended"), DEFAULT, DURING).message
    )


def test_covered_periods_merge_and_sort() -> None:
    contracts = [
        maintenance("2027-01-01", "2027-06-30"),
        maintenance("2025-01-01", "2025-12-31", None),
        maintenance("2026-01-01", "2026-12-31"),
        maintenance("2028-01-01", "2028-12-31"),
        maintenance("2026-03-01", "2026-04-01", "other"),
        customization("2024-01-01", "2030-12-31"),
    ]
    periods = covered_periods(contracts, "maintenance", PRODUCT, NY)
    assert [(p.starts_on, p.ends_on) for p in periods] == [
        (date(2025, 1, 1), date(2027, 6, 30)),
        (date(2028, 1, 1), date(2028, 12, 31)),
    ]
    assert periods[0].start == local(NY, 2025, 1, 1)
    assert periods[0].end == local(NY, 2027, 7, 1)


def test_owned_lines_follow_the_cutoff_and_customization() -> None:
    releases = [
        release("1.0", utc(2026, 2, 1)),
        release("2.0", utc(2027, 2, 1)),
        release("3.0+globex.1", utc(2026, 3, 1), customers={"globex"}),
        release("4.0", utc(2026, 3, 1), product="other"),
        release("5.0+initech.1", utc(2026, 3, 1), customers={"initech"}),
    ]
    status = maintenance_status(LAPSED_2026, DEFAULT, AFTER)
    assert owned_lines(LAPSED_2026, DEFAULT, releases, status) == frozenset({"1.x"})
    customized = license_of(Y2026, CUSTOM_2026)
    assert owned_lines(customized, DEFAULT, releases, status) == frozenset({"1.x", "5.x"})
    never = maintenance_status(license_of(), DEFAULT, AFTER)
    assert owned_lines(license_of(), DEFAULT, releases, never) == frozenset()


@pytest.mark.parametrize(
    ("status", "published", "covered"),
    [
        ("active", DURING, True),
        ("active", DURING + timedelta(microseconds=1), False),
        ("lapsed", DURING - timedelta(microseconds=1), True),
        ("lapsed", DURING, False),
    ],
    ids=["covered-cutoff-inclusive", "covered-after", "lapsed-before", "lapsed-cutoff-exclusive"],
)
def test_cutoff_is_inclusive_while_covered_exclusive_after_lapse(
    status: str, published: datetime, covered: bool
) -> None:
    assert MaintenanceStatus(status, None, DURING, "").covers(published) is covered


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (utc(2026, 1, 31), 1, utc(2026, 2, 28)),
        (utc(2027, 11, 30), 3, utc(2028, 2, 29)),
        (utc(2028, 2, 29), 12, utc(2029, 2, 28)),
        (utc(2026, 12, 15), 1, utc(2027, 1, 15)),
        (utc(2026, 3, 1), 12, utc(2027, 3, 1)),
        (utc(2026, 3, 1), 0, utc(2026, 3, 1)),
    ],
    ids=["jan-31-to-feb-28", "to-leap-day", "from-leap-day", "over-new-year", "a-year", "zero"],
)
def test_add_months_clamps_to_month_end(moment: datetime, months: int, expected: datetime) -> None:
    assert add_months(moment, months) == expected


@pytest.mark.parametrize("module", ["facts.py", "coverage.py", "entitlements.py", "offers.py"])
def test_the_engine_imports_no_framework_and_no_clock(module: str) -> None:
    """Pure: standard library, packaging and the engine itself; no datetime.now anywhere."""
    source = (Path(entitlements.__file__).parent / module).read_text(encoding="utf-8")
    tree = ast.parse(source)
    roots = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    allowed = {
        "__future__",
        "calendar",
        "collections",
        "dataclasses",
        "datetime",
        "functools",
        "bisect",
        "hashlib",
        "typing",
        "zoneinfo",
        "packaging",
        "server",
    }
    assert roots <= allowed, roots - allowed
    clock_reads = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"now", "utcnow", "today", "time", "monotonic"}
    ]
    assert not clock_reads


@pytest.mark.parametrize(
    ("lic", "build", "allowed"),
    [
        (LAPSED_2026, release("1.5", utc(2026, 5, 1)), True),
        (license_of(Y2026, CUSTOM_2026), INITECH_BUILD, True),
        (LAPSED_2026, INITECH_BUILD, False),
        (
            license_of(Y2026, CUSTOM_2026),
            release("1.5+globex.1", utc(2026, 5, 1), customers={"globex"}),
            False,
        ),
    ],
    ids=["not-customized", "own-build-covered", "own-build-uncovered", "other-customers-build"],
)
def test_customization_allows(lic: LicenseFacts, build: ReleaseFacts, allowed: bool) -> None:
    assert customization_allows(lic, DEFAULT, build) is allowed


# --------------------------------------------------------------------------- what the customer reads

BOOKED = license_of(Y2025, maintenance("2026-06-01", "2027-05-31"))
FALLBACK_LAPSED = (
    "Maintenance ended on 2026-12-31. You keep every release published until then; "
    "renew to get newer ones."
)

STATUS_MESSAGES: dict[str, tuple[LicenseFacts, ProductPolicy, datetime, str]] = {
    "active": (LAPSED_2026, DEFAULT, DURING, "Maintenance is active until 2026-12-31."),
    "expiring": (
        LAPSED_2026,
        DEFAULT,
        utc(2026, 12, 20),
        "Maintenance ends on 2026-12-31. Renew to keep receiving updates and security revisions.",
    ),
    "grace": (
        LAPSED_2026,
        policy(grace_days=14),
        utc(2027, 1, 5),
        "Maintenance ended on 2026-12-31; the grace period lasts until 2027-01-14. "
        "Renew now to keep receiving updates.",
    ),
    "lapsed": (LAPSED_2026, DEFAULT, AFTER, FALLBACK_LAPSED),
    "lapsed-under-revoke": (
        LAPSED_2026,
        policy(lapse_policy="revoke"),
        AFTER,
        "Maintenance ended on 2026-12-31. Downloads for this product require active maintenance; "
        "renew to receive releases again.",
    ),
    "lapsed-in-the-carve-out": (
        LAPSED_2026,
        CARVE,
        utc(2027, 2, 1),
        FALLBACK_LAPSED + " Security revisions of the versions you own continue until 2027-03-31.",
    ),
    "lapsed-with-renewal-booked": (
        BOOKED,
        DEFAULT,
        utc(2026, 3, 1),
        "Maintenance ended on 2025-12-31. You keep every release published until then; "
        "renew to get newer ones. Your renewed maintenance starts on 2026-06-01.",
    ),
    "not-started-yet": (
        license_of(maintenance("2027-01-01", "2027-12-31")),
        DEFAULT,
        DURING,
        "Maintenance starts on 2027-01-01.",
    ),
    "never-bought": (
        license_of(),
        DEFAULT,
        DURING,
        "This license has no maintenance contract. Buy maintenance to receive updates.",
    ),
    "suspended": (
        license_of(Y2026, status="suspended"),
        DEFAULT,
        DURING,
        "This license is suspended.",
    ),
    "for-another-product": (
        license_of(Y2026, product="other"),
        DEFAULT,
        DURING,
        "This license is for another product.",
    ),
}


@pytest.mark.parametrize(
    ("lic", "product_policy", "now", "message"),
    STATUS_MESSAGES.values(),
    ids=STATUS_MESSAGES.keys(),
)
def test_what_each_status_tells_the_customer(
    lic: LicenseFacts, product_policy: ProductPolicy, now: datetime, message: str
) -> None:
    assert str(maintenance_status(lic, product_policy, now).message) == message


def test_the_carve_out_runs_in_the_vendors_zone_not_this_machines(
    machine_in_new_york: None,
) -> None:
    # Auckland changes from daylight time (+13) to standard time (+12) within the window.
    lic = license_of(maintenance("2026-03-01", "2027-02-28"))
    status = maintenance_status(
        lic, policy(security_carveout_months=2, timezone=AKL), utc(2027, 3, 15)
    )
    assert status.carve_out_until == local(AKL, 2027, 5, 1)
    assert status.carve_out_until is not None and status.carve_out_until.tzinfo is UTC
    assert str(status.message).endswith(
        "Security revisions of the versions you own continue until 2027-04-30."
    )


@pytest.mark.parametrize(
    ("lapse_policy", "now", "signed"),
    [
        ("revoke", AFTER, None),
        ("fallback", AFTER, utc(2027, 1, 1, 0)),
        ("revoke", DURING, DURING),
    ],
    ids=["revoke-lapsed-none", "fallback-lapsed-keeps-it", "revoke-covered-keeps-it"],
)
def test_the_signed_cutoff_is_none_once_lapsed_under_revoke(
    lapse_policy: str, now: datetime, signed: datetime | None
) -> None:
    p = policy(lapse_policy=lapse_policy, timezone="UTC")
    status = maintenance_status(LAPSED_2026, p, now)
    assert status.cutoff is not None, "the rules still know where coverage ended"
    assert status.signed_cutoff(p.lapse_policy) == signed
