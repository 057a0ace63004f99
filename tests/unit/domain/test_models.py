"""Where a release, a portal user and an admin user stand, computed from their rows, in the
vocabulary's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.domain.models import AdminUser, CustomerUser, Release
from server.domain.vocabulary import AccountState, ReleaseState

AT = datetime(2025, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("published_at", "manifest", "yanked_at", "state"),
    [
        (None, None, None, ReleaseState.DRAFT),
        (AT, None, None, ReleaseState.DRAFT),  # not signed yet
        (None, None, AT, ReleaseState.DRAFT),
        (AT, "{}", None, ReleaseState.PUBLISHED),
        (AT, "{}", AT, ReleaseState.YANKED),
    ],
)
def test_release_state(
    published_at: datetime | None, manifest: str | None, yanked_at: datetime | None, state: str
) -> None:
    release = Release(published_at=published_at, manifest=manifest, yanked_at=yanked_at)
    assert release.state is state


@pytest.mark.parametrize(
    ("password_hash", "disabled", "state"),
    [
        (None, False, AccountState.INVITED),
        ("$argon2id$...", False, AccountState.ACTIVE),
        ("$argon2id$...", True, AccountState.DISABLED),
        (None, True, AccountState.DISABLED),
    ],
)
def test_account_state(password_hash: str | None, disabled: bool, state: str) -> None:
    assert CustomerUser(password_hash=password_hash, disabled=disabled).state is state
    admin_hash = (
        password_hash or ""
    )  # an admin user's empty password is "" (the column is NOT NULL)
    assert AdminUser(password_hash=admin_hash, disabled=disabled).state is state
