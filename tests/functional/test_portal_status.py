"""What the portal says about maintenance, state by state, as the customer reads it: one status,
one action, and never two sentences that contradict each other ("up to date" beside "missing 2
releases", or "Renew" for maintenance never bought)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from server.domain import customers, products
from server.domain.models import Installation
from server.services import Services
from tests.common.factories import (
    make_customer,
    make_license,
    make_product,
    make_release_history,
)
from tests.functional.test_portal import sign_in

TODAY = datetime.now(UTC).date()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


def visible(page: str, section: str | None = None) -> str:
    """The text a reader sees (tags dropped, spaces collapsed), of one section when named."""
    if section is not None:
        page = page.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    page = re.sub(r"<(script|style|head)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@dataclass
class Case:
    contracts: tuple[tuple[str, date, date], ...]
    says: tuple[str, ...]
    never_says: tuple[str, ...] = ()
    installed: tuple[str, ...] = ()
    policy: dict[str, object] = field(default_factory=dict)
    end_of_life: str | None = None  # a line to mark end of life


RENEW = "Renew maintenance"
BUY = "Buy maintenance"
UP_TO_DATE = "Your installations are up to date."
NOT_COVERED = "newer releases need maintenance"

CASES = {
    "never had maintenance": Case(
        contracts=(),
        installed=("1.0.0",),
        says=(
            "No maintenance",
            "This license has no maintenance contract. Buy maintenance to receive updates.",
            "Buy maintenance to receive 3 newer releases, including 1 security revision; newest: 2.0.0.",
            "Your installations run the newest releases your license covers; newer releases need maintenance.",
            BUY,
        ),
        never_says=(RENEW, UP_TO_DATE, "Renew"),
    ),
    "booked, not started": Case(
        contracts=(("maintenance", days(10), days(375)),),
        says=("Maintenance not started yet", f"Maintenance starts on {days(10)}."),
        never_says=(RENEW, BUY),
    ),
    "active and up to date": Case(
        contracts=(("maintenance", days(-100), days(200)),),
        installed=("2.0.0",),
        says=("Maintenance active", f"Maintenance is active until {days(200)}.", UP_TO_DATE),
        never_says=(RENEW, BUY, NOT_COVERED, "missing"),
    ),
    "active, an installation behind": Case(
        contracts=(("maintenance", days(-100), days(200)),),
        installed=("1.0.0", "2.0.0"),
        says=("Maintenance active", "What is new since 1.0.0"),
        never_says=(UP_TO_DATE, NOT_COVERED, RENEW),
    ),
    "expiring": Case(
        contracts=(("maintenance", days(-300), days(10)),),
        says=("Maintenance ending soon", f"Maintenance ends on {days(10)}.", RENEW),
        never_says=(BUY,),
    ),
    "grace": Case(
        contracts=(("maintenance", days(-400), days(-3)),),
        policy={"grace_days": 30},
        says=("Maintenance ended: grace period", f"the grace period lasts until {days(27)}", RENEW),
        never_says=(BUY,),
    ),
    "lapsed, keeps what was published": Case(
        contracts=(("maintenance", days(-400), days(-60)),),
        installed=("1.0.0",),
        says=(
            "Maintenance lapsed",
            "You keep every release published until then",
            "Renew maintenance to receive 2 newer releases, including 1 security revision; newest: 2.0.0.",
            NOT_COVERED,
            RENEW,
        ),
        never_says=(UP_TO_DATE, BUY),
    ),
    "lapsed under the revoke policy": Case(
        contracts=(("maintenance", days(-400), days(-60)),),
        policy={"lapse_policy": "revoke"},
        says=(
            "Maintenance lapsed: downloads stopped",
            "Downloads for this product require active maintenance",
            "No releases are available to this license.",
            RENEW,
        ),
        never_says=(BUY, "You keep every release"),
    ),
    "on an end-of-life line": Case(
        contracts=(("maintenance", days(-100), days(200)),),
        installed=("1.0.0",),
        end_of_life="1.x",
        says=("1.x is no longer supported. Update to 2.0.0 to stay supported.",),
    ),
    "never had maintenance, on an end-of-life line": Case(
        contracts=(),
        installed=("1.0.0",),
        end_of_life="1.x",
        says=("1.x is no longer supported. Buy maintenance to move to a supported version.",),
        never_says=("Renew",),
    ),
}


def _world(services: Services, tmp_path: Path, case: Case) -> str:
    make_product(services, **case.policy)
    make_release_history(services, tmp_path)
    make_customer(services, "acme", *case.contracts)
    key = make_license(services, "acme")
    with services.db.sessions() as s:
        lic = customers.find_license(s, key)
        for n, version in enumerate(case.installed):
            s.add(
                Installation(
                    license_id=lic.id,
                    uid=f"installation-{n}",
                    version=version,
                    platform="linux-x86_64",
                    channel="stable",
                )
            )
        s.commit()
        if case.end_of_life:
            product = products.get_product(s, "acme-erp")
            products.set_line_status(s, product, case.end_of_life, "end-of-life", actor="t")
    return key


@pytest.mark.parametrize("name", list(CASES))
def test_each_maintenance_state_is_worded_once_with_one_action(
    client: FlaskClient, services: Services, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    key = _world(services, tmp_path, case)
    assert sign_in(client, key).status_code == 303
    page = visible(client.get("/portal/").get_data(as_text=True))
    for sentence in case.says:
        assert sentence in page, f"{name}: {sentence!r} not shown"
    for sentence in case.never_says:
        assert sentence not in page, f"{name}: {sentence!r} shown"


@pytest.mark.parametrize(
    ("status", "title", "says"),
    [
        ("suspended", "License suspended", "Contact your vendor to resume it."),
        ("revoked", "License revoked", "can no longer be used"),
    ],
)
def test_a_suspended_or_revoked_key_is_told_why_and_whom_to_ask(
    client: FlaskClient, services: Services, tmp_path: Path, status: str, title: str, says: str
) -> None:
    key = _world(services, tmp_path, CASES["active and up to date"])
    with services.db.sessions() as s:
        customers.set_license_status(s, customers.find_license(s, key), status, actor="t")
    refused = sign_in(client, key)
    assert refused.status_code == 400
    page = visible(refused.get_data(as_text=True))
    assert title in page and says in page
    assert "Contact Vigor" in page, "the vendor's name, who to ask"
    assert "That license key is not valid." not in page
    assert client.get("/portal/").status_code == 302, "and nobody is signed in"
