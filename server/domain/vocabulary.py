"""The vendor's words for closed sets of values, and the shapes of names, in one place.

Every closed set is a ``StrEnum`` whose values are the strings stored in the database (held
there by CHECK constraints, migration 0005), written in signed documents and typed on the
command line; a member compares equal to its string. Models, the entitlement rules, CLI choices,
forms and the OpenAPI schema all take their values from here, so a new value is added once.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, TypeGuard, TypeVar
from urllib.parse import urlsplit

from server.domain.errors import InvalidInputError


class ReleaseKind(StrEnum):
    """What a release is, in the vendor's support terms."""

    UPDATE = "update"  # periodic update package: small improvements
    SECURITY = "security"  # security revision
    VERSION = "version"  # new version with new features


class Severity(StrEnum):
    """How bad what a security revision fixes is; sets how soon it must be applied."""

    CRITICAL = "critical"  # the application cannot be used
    SERIOUS = "serious"  # an essential part cannot be used
    MINOR = "minor"  # a non-essential part cannot be used


class LineStatus(StrEnum):
    """Where a product line (``4.x``) is in its lifecycle."""

    SUPPORTED = "supported"
    SECURITY_ONLY = "security-only"
    END_OF_LIFE = "end-of-life"


class ContractState(StrEnum):
    """Where a contract stands today (computed, never stored; the contracts list's filter)."""

    CURRENT = "current"
    ENDING = "ending"  # current, ends within the days asked, and not renewed yet
    ENDED = "ended"
    LAPSED = "lapsed"  # ended, and no later contract of its kind for its product follows


class LapsePolicy(StrEnum):
    """What a customer whose maintenance lapsed may still download."""

    FALLBACK = "fallback"  # everything published while covered (perpetual fallback)
    REVOKE = "revoke"  # nothing at all


class PatchFormat(StrEnum):
    """How a delta patch is written; the patches document names it, agents say which they read."""

    VIGOR1 = "vigor1"  # copy/insert instructions, lzma-compressed (servers before zstd)
    ZSTD1 = "zstd1"  # zstd frames with the old content as prefix (server/domain/delta.py)


class PatchSkipReason(StrEnum):
    """Why a patch between two releases was not made."""

    NOT_WORTH_IT = "not-worth-it"  # larger than the share of the full artifact allowed
    TOO_SLOW = "too-slow"  # generation passed its time limit
    ERROR = "error"  # the store or an archive failed; `vigor release patches` tries again


class ContractKind(StrEnum):
    MAINTENANCE = "maintenance"
    CUSTOMIZATION = "customization"  # the add-on required to receive customized builds


class LicenseStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # reversible
    REVOKED = "revoked"  # final


class Maintenance(StrEnum):
    """A license's maintenance status at an instant (computed, never stored)."""

    ACTIVE = "active"
    EXPIRING = "expiring"  # active, ends within the warning window
    GRACE = "grace"  # ended, within the grace window
    LAPSED = "lapsed"
    NONE = "none"  # no covered period has begun, or the license is not active


class Standing(StrEnum):
    """Where a license stands as its customer reads it in the portal (computed, never stored):
    :class:`Maintenance` told apart by what the customer can do about it."""

    NEVER_COVERED = "never-covered"  # no maintenance ever bought, none booked
    NOT_STARTED = "not-started"  # a maintenance contract that begins later
    ACTIVE = "active"
    EXPIRING = "expiring"
    GRACE = "grace"
    LAPSED = "lapsed"  # perpetual fallback: keeps what was published while covered
    LAPSED_NO_DOWNLOADS = "lapsed-no-downloads"  # the product's lapse policy is ``revoke``
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class PortalAction(StrEnum):
    """The one thing the portal offers a customer to do about their maintenance."""

    RENEW = "renew"  # had maintenance: renew it
    BUY = "buy"  # never had it: buy it (never "renew" something never bought)
    CONTACT = "contact"  # only the vendor can help (a suspended or revoked license)
    NONE = "none"  # nothing to do


class Role(StrEnum):
    """What an admin user or API token may do; each role may do what the ones after it may."""

    ADMIN = "admin"
    PUBLISHER = "publisher"
    VIEWER = "viewer"

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) <= order.index(needed)


class Scope(StrEnum):
    """What an API token may do (docs/admin-api.md): a token holds one or more scopes."""

    RELEASES_READ = "releases:read"  # list releases
    RELEASES_PUBLISH = "releases:publish"  # publish releases (CI)
    PRODUCTS_READ = "products:read"  # list products and their lines
    PRODUCTS_WRITE = "products:write"  # add products, move lines through their lifecycle
    CUSTOMERS_READ = "customers:read"  # customers, contracts, licenses, portal users
    CUSTOMERS_WRITE = "customers:write"  # change any of those
    INSTALLATIONS_READ = "installations:read"
    AUDIT_READ = "audit:read"
    NOTIFICATIONS_READ = "notifications:read"  # e-mails sent, webhook endpoints and deliveries
    NOTIFICATIONS_WRITE = "notifications:write"  # test e-mails; add, change, test webhooks
    READ = "read"  # every ``:read`` scope

    def grants(self) -> frozenset[Scope]:
        """The scopes this one stands for (``read`` is every ``:read``; a ``:write`` does not
        imply its ``:read``)."""
        if self is Scope.READ:
            return frozenset(s for s in Scope if s.value.endswith(":read"))
        return frozenset({self})


# What the role of a token made before scopes meant, as scopes (those tokens keep working).
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: Scope.READ.grants(),
    Role.PUBLISHER: Scope.READ.grants() | {Scope.RELEASES_PUBLISH},
    Role.ADMIN: frozenset(Scope) - {Scope.READ},
}


class ApplyOutcome(StrEnum):
    """What an installation reports after applying a release."""

    SUCCESS = "success"
    FAILURE = "failure"
    ROLLED_BACK = "rolled_back"


class ReleaseState(StrEnum):
    """Where a release stands (computed from its row)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    YANKED = "yanked"


class AccountState(StrEnum):
    """Where a person who signs in stands, a portal user or an admin user (computed from the
    row)."""

    INVITED = "invited"  # no password set yet
    ACTIVE = "active"
    DISABLED = "disabled"


class JobKind(StrEnum):
    """What a background job does (``server/jobs``); each kind has one handler in the worker."""

    PATCHES = "patches"  # delta patches to a just-published release: {"release_id": N}
    # A job that does nothing but prove the worker runs jobs end to end (`vigor jobs probe`);
    # it can wait for a file to appear, so an operator (or a test) can watch one in flight.
    PROBE = "probe"
    EMAIL = "email"  # send one queued e-mail: {"email_id": N} (server/domain/emails.py)
    # Find the renewal reminders due now and queue them (periodic, on the worker).
    REMINDERS_SCAN = "reminders_scan"
    # E-mail the customers a published security revision concerns: {"release_id": N}.
    SECURITY_NOTICES = "security_notices"

    # One webhook event sent to one endpoint: {"delivery_id": N}; its retries are the job's.
    WEBHOOK_DELIVERY = "webhook_delivery"
    # The periodic scan that emits the time-based contract events (expiring, lapsed): {}.
    CONTRACT_EVENTS_SCAN = "contract_events_scan"


class EmailKind(StrEnum):
    """Why an e-mail was sent (server/domain/emails.py)."""

    REMINDER = "reminder"  # maintenance ends soon, ended, or its grace period is over
    SECURITY_NOTICE = "security"  # a security revision the customer is entitled to
    RENEWAL_WOULD_BRING = "renewal_brings"  # one a lapsed customer would get by renewing
    PORTAL_INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of e-mail; an admin's reset or the portal's forgot-password page
    TEST = "test"  # an admin's "send test"


class EmailState(StrEnum):
    """Where a queued e-mail stands."""

    QUEUED = "queued"  # waiting for the worker (again, after a temporary SMTP failure)
    SENDING = "sending"  # handed to the SMTP server by a worker right now
    SENT = "sent"  # the SMTP server accepted it
    FAILED = "failed"  # refused for good (5xx), or its attempts are spent


class EventType(StrEnum):
    """What a webhook event says happened (docs/webhooks.md shows each one's ``data``)."""

    PING = "ping"  # "Send test" on an endpoint; sent to that endpoint only
    RELEASE_PUBLISHED = "release.published"
    RELEASE_YANKED = "release.yanked"
    ROLLOUT_HALTED = "rollout.halted"
    CUSTOMER_CREATED = "customer.created"
    CONTRACT_CREATED = "contract.created"
    CONTRACT_RENEWED = "contract.renewed"
    CONTRACT_EXPIRING = "contract.expiring"
    CONTRACT_LAPSED = "contract.lapsed"
    LICENSE_ISSUED = "license.issued"
    LICENSE_SUSPENDED = "license.suspended"
    LICENSE_REACTIVATED = "license.reactivated"
    LICENSE_REVOKED = "license.revoked"
    INSTALLATION_UPDATE_FAILED = "installation.update_failed"


class DeliveryState(StrEnum):
    """Where the delivery of one event to one endpoint stands."""

    PENDING = "pending"  # not tried yet, or tried again on request
    RETRYING = "retrying"  # the last attempt failed; the worker tries again (or gave up)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    CANCELLED = "cancelled"  # the endpoint was disabled or removed before it answered 2xx


class JobState(StrEnum):
    """Where a background job stands."""

    QUEUED = "queued"  # waiting for its run_after time and a worker
    RUNNING = "running"  # claimed by a worker until its lease ends
    DONE = "done"
    FAILED = "failed"  # out of attempts; its last error is kept, an operator may retry it


E = TypeVar("E", bound=StrEnum)


def values(enum: type[StrEnum]) -> list[str]:
    """The strings of a closed set, in its order (for CLI choices, forms and schemas)."""
    return [member.value for member in enum]


def parse(enum: type[E], field: str, value: Any) -> E:
    """``value`` (from a form, a JSON body, an argument) as a member of ``enum``.

    Raises:
        InvalidInputError: ``value`` is none of the set's strings; the message lists them.
    """
    try:
        return enum(value)
    except ValueError:
        raise InvalidInputError(
            field, f"must be one of {', '.join(values(enum))}, not {value!r}"
        ) from None


DEFAULT_CHANNEL = "stable"
ANY_PLATFORM = "any"  # an artifact that runs on every platform

# Slugs: what products, customers and channels are named by in URLs, licenses and agents.
SLUG_PATTERN = r"\A[a-z0-9][a-z0-9-]{0,62}\Z"
SLUG_RE = re.compile(SLUG_PATTERN)
OPERATING_SYSTEMS = ("linux", "windows", "macos", "freebsd")
ARCHITECTURES = ("x86_64", "aarch64", "armv7", "i686", "universal")
PLATFORM_RE = re.compile(rf"\A(any|({'|'.join(OPERATING_SYSTEMS)})-({'|'.join(ARCHITECTURES)}))\Z")
PLATFORMS = tuple(f"{system}-{arch}" for system in OPERATING_SYSTEMS for arch in ARCHITECTURES)
INSTALLATION_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{16,64}\Z")
NONCE_RE = re.compile(r"\A[0-9a-f]{16,128}\Z")


MAX_URL_LENGTH = 500
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\\"'<>`]")


def is_web_url(text: str | None) -> TypeGuard[str]:
    """Whether ``text`` is an absolute ``http://`` or ``https://`` URL with a host — the only
    kind a renewal link or the public URL may be (``javascript:``, ``data:`` and relative URLs
    would run or resolve in the customer's browser)."""
    if not text or len(text) > MAX_URL_LENGTH or _URL_FORBIDDEN.search(text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)
