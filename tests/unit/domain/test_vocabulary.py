"""The vocabulary: what each role may do, and how input becomes a member or is refused."""

from __future__ import annotations

import pytest

from server.domain.errors import InvalidInputError
from server.domain.vocabulary import LicenseStatus, Role, Severity, parse, values

# (role, needed, allowed): each role may do what the ones after it may, and nothing more.
ROLE_MATRIX = [
    (Role.ADMIN, Role.ADMIN, True),
    (Role.ADMIN, Role.PUBLISHER, True),
    (Role.ADMIN, Role.VIEWER, True),
    (Role.PUBLISHER, Role.ADMIN, False),
    (Role.PUBLISHER, Role.PUBLISHER, True),
    (Role.PUBLISHER, Role.VIEWER, True),
    (Role.VIEWER, Role.ADMIN, False),
    (Role.VIEWER, Role.PUBLISHER, False),
    (Role.VIEWER, Role.VIEWER, True),
]


@pytest.mark.parametrize(("role", "needed", "allowed"), ROLE_MATRIX)
def test_role_allows(role: Role, needed: Role, allowed: bool) -> None:
    assert role.allows(needed) is allowed


def test_values_are_the_stored_strings_in_order() -> None:
    assert values(Severity) == ["critical", "serious", "minor"]
    assert values(LicenseStatus) == ["active", "suspended", "revoked"]


def test_parse_gives_the_member_for_its_string() -> None:
    assert parse(LicenseStatus, "status", "suspended") is LicenseStatus.SUSPENDED
    assert parse(LicenseStatus, "status", LicenseStatus.REVOKED) is LicenseStatus.REVOKED


@pytest.mark.parametrize("given", ["archived", "ACTIVE", "Active", "", None, 1, ["active"]])
def test_parse_refuses_anything_else_naming_the_field_and_the_set(given: object) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse(LicenseStatus, "status", given)
    assert refused.value.field == "status"
    assert str(refused.value) == (
        f"status: must be one of active, suspended, revoked, not {given!r}"
    )
