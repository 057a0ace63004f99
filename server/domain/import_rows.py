"""The rows of a customers CSV file (docs/import.md) as the parts they describe: a customer
and, optionally, one contract, one license (an existing key from another system) and one
installation of it. Pure: no database; a bad field is a problem of its row, naming its column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from server.domain.csv_input import CsvRow, parse_day, parse_moment
from server.domain.customers import split_emails
from server.domain.errors import InvalidInputError
from server.domain.messages import LANGUAGES
from server.domain.releases import parse_version
from server.domain.secrets import display_prefix, secret_hash
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    INSTALLATION_ID_RE,
    PLATFORM_RE,
    SLUG_RE,
    ContractKind,
    LicenseStatus,
    values,
)

COLUMNS = (
    "customer",
    "name",
    "email",
    "language",
    "product",
    "contract_kind",
    "contract_from",
    "contract_to",
    "license_key",
    "license_label",
    "max_installations",
    "license_status",
    "installation_id",
    "version",
    "platform",
    "channel",
    "last_seen",
)
# Keys from other systems: printable ASCII, no space at either end, 12 to 200 characters.
IMPORTED_KEY_RE = re.compile(r"\A[!-~][ -~]{10,198}[!-~]\Z")
_EMAIL_RE = re.compile(r"\A[^@\s]+@[^@\s]+\.[^@\s]+\Z")


@dataclass(frozen=True)
class CustomerPart:
    slug: str
    name: str  # "" when the row does not say
    email: str
    language: str


@dataclass(frozen=True)
class ContractPart:
    customer: str
    kind: ContractKind
    product: str | None  # None: every product
    starts_on: date
    ends_on: date


@dataclass(frozen=True)
class LicensePart:
    key_hash: str
    key_prefix: str
    customer: str
    product: str
    label: str
    max_installations: int | None
    status: LicenseStatus | None  # None: not said (active when new)


@dataclass(frozen=True)
class InstallationPart:
    key_hash: str
    uid: str
    version: str
    platform: str
    channel: str
    last_seen: datetime | None  # None: not said (the time of the import)


@dataclass(frozen=True)
class RowParts:
    line: int
    customer: CustomerPart
    contract: ContractPart | None
    license: LicensePart | None
    installation: InstallationPart | None


class _Problems:
    """The problems of one row, each naming its column."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.found.append(message)
        return condition

    def value(self, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except InvalidInputError as exc:
            self.found.append(exc.message)
            return None


def _int_or_none(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1 or int(text) > 1_000_000:
        raise InvalidInputError("max_installations", f"{text[:20]!r} is not a number from 1")
    return int(text)


def _one_of(enum: Any, column: str, text: str, default: Any) -> Any:
    if not text:
        return default
    try:
        return enum(text.lower())
    except ValueError:
        raise InvalidInputError(
            column, f"{text[:40]!r} is not one of {', '.join(values(enum))}"
        ) from None


def _version(text: str) -> str:
    parse_version(text)
    return text


def parse_row(row: CsvRow, now: datetime) -> tuple[RowParts | None, list[str]]:
    """The parts one row describes, or the problems that make it unusable."""
    p = _Problems()
    slug = row.get("customer").lower()
    p.check(bool(SLUG_RE.match(slug)), f"customer: {slug[:70]!r} must be a slug (a-z, 0-9, -)")
    name, email, language = row.get("name"), row.get("email"), row.get("language").lower()
    p.check(len(name) <= 200, "name: longer than 200 characters")
    addresses = split_emails(email)
    p.check(
        all(_EMAIL_RE.match(a) and len(a) <= 320 for a in addresses),
        "email: not valid (one or more addresses, separated by spaces, commas or semicolons)",
    )
    email = ", ".join(addresses)
    p.check(
        not language or language in LANGUAGES,
        f"language: {language[:20]!r} is not one of {', '.join(LANGUAGES)}",
    )
    product = row.get("product").lower()
    p.check(not product or bool(SLUG_RE.match(product)), f"product: {product[:70]!r} not a slug")
    contract = _contract(row, p, slug, product or None)
    lic = _license(row, p, slug, product)
    inst = _installation(row, p, lic, now)
    if p.found:
        return None, p.found
    return RowParts(row.line, CustomerPart(slug, name, email, language), contract, lic, inst), []


def _contract(row: CsvRow, p: _Problems, customer: str, product: str | None) -> ContractPart | None:
    starts, ends = row.get("contract_from"), row.get("contract_to")
    if not (starts or ends or row.get("contract_kind")):
        return None
    if not p.check(bool(starts and ends), "contract_from and contract_to: give both"):
        return None
    kind = p.value(_one_of, ContractKind, "contract_kind", row.get("contract_kind"), "maintenance")
    starts_on = p.value(parse_day, starts, "contract_from")
    ends_on = p.value(parse_day, ends, "contract_to")
    if kind is None or starts_on is None or ends_on is None:
        return None
    if not p.check(ends_on >= starts_on, "contract_to: before contract_from"):
        return None
    return ContractPart(customer, kind, product, starts_on, ends_on)


def _license(row: CsvRow, p: _Problems, customer: str, product: str) -> LicensePart | None:
    key = row.fields.get("license_key", "")  # not stripped: a key is what the agent sends
    others = ("license_label", "max_installations", "license_status", "installation_id")
    if not key.strip():
        p.check(
            not any(row.get(c) for c in others),
            "license_key: required with license or installation columns",
        )
        return None
    if not p.check(
        bool(IMPORTED_KEY_RE.match(key)),
        "license_key: must be 12 to 200 printable ASCII characters, no space at either end",
    ):
        return None
    p.check(bool(product), "product: required with a license_key")
    label = row.get("license_label")
    p.check(len(label) <= 200, "license_label: longer than 200 characters")
    cap = p.value(_int_or_none, row.get("max_installations"))
    status = p.value(_one_of, LicenseStatus, "license_status", row.get("license_status"), None)
    return LicensePart(secret_hash(key), display_prefix(key), customer, product, label, cap, status)


def _installation(
    row: CsvRow, p: _Problems, lic: LicensePart | None, now: datetime
) -> InstallationPart | None:
    uid = row.get("installation_id")
    if not uid:
        p.check(
            not any(row.get(c) for c in ("version", "platform", "channel", "last_seen")),
            "installation_id: required with version, platform, channel or last_seen",
        )
        return None
    p.check(
        bool(INSTALLATION_ID_RE.match(uid)),
        "installation_id: 16 to 64 letters, digits, '-' or '_'",
    )
    version_text = row.get("version")
    p.check(bool(version_text), "version: required with an installation_id")
    version = p.value(_version, version_text) if version_text else None
    platform = row.get("platform")
    p.check(bool(PLATFORM_RE.match(platform)), f"platform: {platform[:40]!r} is not os-arch or any")
    channel = row.get("channel") or DEFAULT_CHANNEL
    p.check(bool(SLUG_RE.match(channel)), f"channel: {channel[:40]!r} is not a channel name")
    seen = None
    if row.get("last_seen"):
        seen = p.value(parse_moment, row.get("last_seen"), "last_seen")
        p.check(seen is None or seen <= now, "last_seen: in the future")
    if lic is None or version is None:
        return None
    return InstallationPart(lic.key_hash, uid, version, platform, channel, seen)
