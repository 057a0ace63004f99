"""How the portal words a license's maintenance: one decision per state, so that a page never
says both "up to date" and "missing 9 releases", nor offers to renew what was never bought.

:func:`standing_of` tells the states apart by what the customer can do about them (a lapse under
the product's ``revoke`` policy is not the same news as one under perpetual fallback; a contract
booked for later is not "no maintenance"); :func:`portal_status` adds the sentences and the one
action the portal offers. Pure: the facts the entitlement engine already decided go in, values to
render come out. The pages only render them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import Version

from server.domain.coverage import MaintenanceStatus
from server.domain.facts import ProductPolicy
from server.domain.messages import Text, _
from server.domain.offers import ReleaseIndex, RenewalSummary
from server.domain.vocabulary import (
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    Maintenance,
    PortalAction,
    Standing,
)

_BY_MAINTENANCE = {
    Maintenance.ACTIVE: Standing.ACTIVE,
    Maintenance.EXPIRING: Standing.EXPIRING,
    Maintenance.GRACE: Standing.GRACE,
}

_ACTIONS = {
    Standing.NEVER_COVERED: PortalAction.BUY,
    Standing.NOT_STARTED: PortalAction.NONE,
    Standing.ACTIVE: PortalAction.NONE,
    Standing.EXPIRING: PortalAction.RENEW,
    Standing.GRACE: PortalAction.RENEW,
    Standing.LAPSED: PortalAction.RENEW,
    Standing.LAPSED_NO_DOWNLOADS: PortalAction.RENEW,
    Standing.SUSPENDED: PortalAction.CONTACT,
    Standing.REVOKED: PortalAction.CONTACT,
}

# How loudly the page says it: "ok" (a quiet line), "warning" (act soon), "alert" (act now).
_TONES = {
    Standing.ACTIVE: "ok",
    Standing.NOT_STARTED: "ok",
    Standing.EXPIRING: "warning",
    Standing.GRACE: "warning",
}


def _titles() -> dict[Standing, Text]:
    return {
        Standing.NEVER_COVERED: _("No maintenance"),
        Standing.NOT_STARTED: _("Maintenance not started yet"),
        Standing.ACTIVE: _("Maintenance active"),
        Standing.EXPIRING: _("Maintenance ending soon"),
        Standing.GRACE: _("Maintenance ended: grace period"),
        Standing.LAPSED: _("Maintenance lapsed"),
        Standing.LAPSED_NO_DOWNLOADS: _("Maintenance lapsed: downloads stopped"),
        Standing.SUSPENDED: _("License suspended"),
        Standing.REVOKED: _("License revoked"),
    }


@dataclass(frozen=True)
class PortalStatus:
    """A license's maintenance as the portal tells it."""

    standing: Standing
    title: Text  # "Maintenance lapsed"
    message: Text  # what it means, with its dates
    action: PortalAction  # the one button the page offers
    missing: Text | None = None  # what renewing (or buying) would bring, when it brings releases
    installations: Text | None = None  # how the installations stand, when none is to update
    notices: tuple[Text, ...] = ()  # installations on an end-of-life line

    @property
    def tone(self) -> str:
        """``ok``, ``warning`` or ``alert``: how prominently the page shows it."""
        return _TONES.get(self.standing, "alert")


def standing_of(
    license_status: LicenseStatus, maintenance: MaintenanceStatus, policy: ProductPolicy
) -> Standing:
    """Where the license stands, in the portal's words."""
    if license_status == LicenseStatus.SUSPENDED:
        return Standing.SUSPENDED
    if license_status == LicenseStatus.REVOKED:
        return Standing.REVOKED
    if maintenance.status in _BY_MAINTENANCE:
        return _BY_MAINTENANCE[maintenance.status]
    if maintenance.status == Maintenance.LAPSED:
        if policy.lapse_policy == LapsePolicy.REVOKE:
            return Standing.LAPSED_NO_DOWNLOADS
        return Standing.LAPSED
    if maintenance.next_starts_on is not None:
        return Standing.NOT_STARTED
    return Standing.NEVER_COVERED


def refused_status(license_status: LicenseStatus) -> PortalStatus:
    """What the portal says about a license that may not be used (suspended or revoked)."""
    if license_status == LicenseStatus.REVOKED:
        standing, message = (
            Standing.REVOKED,
            _("This license was revoked and can no longer be used. Contact your vendor."),
        )
    else:
        standing, message = (
            Standing.SUSPENDED,
            _(
                "This license is suspended: its installations receive no updates and nothing can be downloaded. Contact your vendor to resume it."
            ),
        )
    return PortalStatus(standing, _titles()[standing], message, _ACTIONS[standing])


def portal_status(
    license_status: LicenseStatus,
    maintenance: MaintenanceStatus,
    policy: ProductPolicy,
    *,
    renewal: RenewalSummary | None = None,
    installed: Sequence[Version] = (),
    covered_newer: bool = False,
    index: ReleaseIndex | None = None,
    way_out: Version | None = None,
) -> PortalStatus:
    """The status, its sentences and the action the portal shows for one license.

    Args:
        license_status, maintenance, policy: the license's status, its maintenance status at
            ``now`` and its product's policy.
        renewal: what renewal would bring (:func:`server.domain.portal.renewal_of`).
        installed: the versions the license's installations last reported, oldest first.
        covered_newer: some release the license may download is newer than the oldest installed.
        index: the product's releases, for the lifecycle of the installed versions' lines.
        way_out: the newest release the license may download (the way off an end-of-life line).
    """
    standing = standing_of(license_status, maintenance, policy)
    if standing in {Standing.SUSPENDED, Standing.REVOKED}:
        return refused_status(license_status)
    action = _ACTIONS[standing]
    missing = renewal.message if renewal is not None and renewal.newest_version else None
    return PortalStatus(
        standing,
        _titles()[standing],
        maintenance.message,
        action,
        missing=missing,
        installations=_installations(installed, covered_newer, renewal),
        notices=_end_of_life(installed, index, way_out, action),
    )


def _installations(
    installed: Sequence[Version], covered_newer: bool, renewal: RenewalSummary | None
) -> Text | None:
    """One sentence, when no listed release is newer than what the installations run: up to
    date only when nothing newer exists for them at all, with maintenance or without."""
    if not installed or covered_newer:
        return None  # nothing reported, or the page lists what is new for them
    newest_missing = renewal.newest_version if renewal is not None else None
    if newest_missing is not None and newest_missing > installed[0]:
        return _(
            "Your installations run the newest releases your license covers; newer releases need maintenance."
        )
    return _("Your installations are up to date.")


def _end_of_life(
    installed: Sequence[Version],
    index: ReleaseIndex | None,
    way_out: Version | None,
    action: PortalAction,
) -> tuple[Text, ...]:
    """A notice per end-of-life line an installation runs, with the way off it."""
    if index is None:
        return ()
    lines = []
    for version in installed:
        found = index.line_of(version)
        if found is not None and found[1] == LineStatus.END_OF_LIFE and found[0] not in lines:
            lines.append(found[0])
    notices = []
    for line in lines:
        if way_out is not None and index.line_of(way_out) != (line, LineStatus.END_OF_LIFE):
            step = _("Update to {version} to stay supported.", version=way_out)
        elif action == PortalAction.BUY:
            step = _("Buy maintenance to move to a supported version.")
        else:
            step = _("Renew maintenance to move to a supported version.")
        notices.append(_("{line} is no longer supported. {way_out}", line=line, way_out=step))
    return tuple(notices)
