"""Customers, their contracts, and the licenses their installations present."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError
from server.domain.messages import LANGUAGES
from server.domain.models import Contract, Customer, Installation, License, Product, utcnow
from server.domain.products import check_slug
from server.domain.secrets import display_prefix, new_secret, secret_hash
from server.domain.users import normalize_email
from server.domain.vocabulary import ContractKind, LicenseStatus, parse

LICENSE_PREFIX = "vgl"
NAME_LENGTH = 200  # customers.name
MAX_CONTACT_EMAILS = 20


def get_customer(session: Session, slug: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.slug == slug).options(selectinload(Customer.contracts))
    )
    if customer is None:
        raise NotFoundError(f"no customer {slug!r}", customer=slug)
    return customer


def add_customer(
    session: Session,
    slug: str,
    name: str,
    *,
    actor: str,
    contact_emails: Sequence[str] = (),
    language: str = "",
    notes: str = "",
) -> Customer:
    """A new customer; ``language`` ("" to follow each reader's browser or agent) picks the
    language of their portal and of the sentences in their check responses.

    Raises:
        InvalidInputError: a bad slug, contact e-mail or language.
        ConflictError: the slug is taken.
    """
    check_slug("slug", slug)
    emails = _contact_emails(contact_emails)
    _check_language(language)
    if session.scalar(select(Customer.id).where(Customer.slug == slug)) is not None:
        raise ConflictError(f"customer {slug!r} already exists", field="slug")
    customer = Customer(
        slug=slug,
        name=_name(name) or slug,
        contact_emails=emails,
        language=language,
        notes=notes.strip(),
    )
    session.add(customer)
    audit.record(session, actor, "customer.add", slug, name=customer.name)
    session.commit()
    return customer


def update_customer(
    session: Session,
    customer: Customer,
    *,
    name: str,
    contact_emails: Sequence[str],
    language: str,
    notes: str,
    actor: str,
) -> Customer:
    """Change a customer's details; the audit event names the fields that changed (nothing is
    recorded or written when nothing did).

    Raises:
        InvalidInputError: an empty name, a bad contact e-mail or language; nothing changes.
    """
    if not _name(name):
        raise InvalidInputError("name", "must not be empty")
    wanted = {
        "name": _name(name),
        "contact_emails": _contact_emails(contact_emails),
        "language": _check_language(language),
        "notes": notes.strip(),
    }
    changed = [field for field, value in wanted.items() if getattr(customer, field) != value]
    if changed:
        for field in changed:
            setattr(customer, field, wanted[field])
        audit.record(session, actor, "customer.update", customer.slug, changed=changed)
        session.commit()
    return customer


def contacts(customer: Customer) -> list[str]:
    """The addresses to write to about ``customer`` (renewals, security notices)."""
    return list(customer.contact_emails or [])


def split_emails(text: str) -> list[str]:
    """Addresses typed one per line or separated by commas or semicolons."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


def _contact_emails(emails: Sequence[str]) -> list[str]:
    """``emails`` checked and normalized, duplicates dropped, order kept.

    Raises:
        InvalidInputError: one is not an e-mail address (the message names it).
    """
    found: list[str] = []
    for email in emails:
        try:
            normal = normalize_email(email)
        except InvalidInputError:
            raise InvalidInputError(
                "contact_emails", f"{email.strip()[:80]!r} is not an e-mail address"
            ) from None
        if normal not in found:
            found.append(normal)
    if len(found) > MAX_CONTACT_EMAILS:
        raise InvalidInputError("contact_emails", f"at most {MAX_CONTACT_EMAILS} addresses")
    return found


def _name(name: str) -> str:
    name = name.strip()
    if len(name) > NAME_LENGTH:
        raise InvalidInputError("name", f"must be at most {NAME_LENGTH} characters")
    return name


def _check_language(language: str) -> str:
    if language and language not in LANGUAGES:
        raise InvalidInputError("language", f"must be one of {', '.join(LANGUAGES)}")
    return language


def set_language(session: Session, customer: Customer, language: str, *, actor: str) -> None:
    """The language of the customer's portal and check messages; "" follows each reader."""
    _check_language(language)
    if customer.language != language:
        audit.record(
            session, actor, "customer.language", customer.slug, language=language or "auto"
        )
        customer.language = language
        session.commit()


def add_contract(
    session: Session,
    customer: Customer,
    kind: str,
    starts_on: date,
    ends_on: date,
    *,
    actor: str,
    product: Product | None = None,
    note: str = "",
    renews: Contract | None = None,
) -> Contract:
    """Record a maintenance or customization contract covering whole days, ends inclusive
    (audited as ``contract.renew`` when it ``renews`` another)."""
    contract_kind = parse(ContractKind, "kind", kind)
    if ends_on < starts_on:
        raise InvalidInputError("ends_on", "must not be before starts_on")
    contract = Contract(
        customer=customer,
        kind=contract_kind,
        product=product,
        starts_on=starts_on,
        ends_on=ends_on,
        note=note,
    )
    session.add(contract)
    session.flush()  # its id, for the audit trail and the webhook event
    extra = {"renews": renews.id} if renews is not None else {}
    audit.record(
        session,
        actor,
        "contract.renew" if renews is not None else "contract.add",
        customer.slug,
        contract_id=contract.id,
        **extra,
        kind=contract_kind,
        product=product.slug if product else "all",
        starts_on=starts_on.isoformat(),
        ends_on=ends_on.isoformat(),
    )
    session.commit()
    return contract


def renew_contract(session: Session, contract: Contract, years: int = 1, *, actor: str) -> Contract:
    """Renew in one step: a new contract from the day after the old one ends (or today if lapsed)."""
    start, end = renewal_period(contract, years)
    return add_contract(
        session,
        contract.customer,
        contract.kind,
        start,
        end,
        actor=actor,
        product=contract.product,
        note=f"renewal of contract {contract.id}",
        renews=contract,
    )


def renewal_period(contract: Contract, years: int = 1) -> tuple[date, date]:
    """The first and last day of the contract that renewing ``contract`` would add today."""
    start = max(contract.ends_on + timedelta(days=1), utcnow().date())
    return start, _add_years(start, years) - timedelta(days=1)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def issue_license(
    session: Session,
    customer: Customer,
    product: Product,
    *,
    actor: str,
    label: str = "",
    max_installations: int | None = None,
) -> tuple[License, str]:
    """Issue a license; returns the row and the key, which is shown once and never stored."""
    if max_installations is not None and max_installations < 1:
        raise InvalidInputError("max_installations", "must be at least 1 (or unset)")
    key = new_secret(LICENSE_PREFIX)
    lic = License(
        customer=customer,
        product=product,
        key_hash=secret_hash(key),
        key_prefix=display_prefix(key),
        label=label,
        max_installations=max_installations,
    )
    session.add(lic)
    audit.record(
        session,
        actor,
        "license.issue",
        f"{customer.slug}/{lic.key_prefix}",
        product=product.slug,
        max_installations=max_installations,
    )
    session.commit()
    return lic, key


def find_license(session: Session, key_or_prefix: str) -> License:
    """A license by its full key, or by the prefix shown in lists (must be unambiguous)."""
    lic = session.scalar(select(License).where(License.key_hash == secret_hash(key_or_prefix)))
    if lic is not None:
        return lic
    matches = list(session.scalars(select(License).where(License.key_prefix == key_or_prefix)))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConflictError(f"{key_or_prefix!r} names several licenses; give the full key or id")
    if key_or_prefix.isascii() and key_or_prefix.isdigit() and len(key_or_prefix) <= 10:
        by_id = session.get(License, int(key_or_prefix)) if int(key_or_prefix) < 2**31 else None
        if by_id is not None:
            return by_id
    raise NotFoundError(f"no license {key_or_prefix!r}")


# What an admin may do to a license, and the status each action leads to.
LICENSE_ACTIONS: Mapping[str, LicenseStatus] = {
    "suspend": LicenseStatus.SUSPENDED,
    "reactivate": LicenseStatus.ACTIVE,
    "revoke": LicenseStatus.REVOKED,
}


def license_actions(lic: License) -> tuple[str, ...]:
    """The actions an admin may take on ``lic`` now: none once revoked (that is final)."""
    if lic.status == LicenseStatus.REVOKED:
        return ()
    return ("reactivate" if lic.status == LicenseStatus.SUSPENDED else "suspend", "revoke")


def set_license_status(session: Session, lic: License, status: str, *, actor: str) -> License:
    """Suspend (reversible), reactivate, or revoke (final) a license."""
    new_status = parse(LicenseStatus, "status", status)
    if lic.status == LicenseStatus.REVOKED and new_status != LicenseStatus.REVOKED:
        raise ConflictError("a revoked license cannot be reactivated; issue a new one")
    if lic.status != new_status:
        lic.status = new_status
        lic.status_changed_at = utcnow()
        audit.record(
            session,
            actor,
            f"license.{new_status}",
            f"{lic.customer.slug}/{lic.key_prefix}",
            product=lic.product.slug,
        )
        session.commit()
    return lic


def installation_counts(
    session: Session,
    customer: Customer | None = None,
    *,
    license_ids: Sequence[int] | None = None,
) -> dict[int, int]:
    """License id → how many installations use it, for ``customer``'s licenses, for the
    licenses ``license_ids``, or for every license (one query; a license no installation uses
    is absent)."""
    query = select(Installation.license_id, func.count()).group_by(Installation.license_id)
    if customer is not None:
        query = query.join(License, License.id == Installation.license_id).where(
            License.customer_id == customer.id
        )
    if license_ids is not None:
        query = query.where(Installation.license_id.in_(license_ids))
    return dict(session.execute(query).all())


def license_usage(session: Session, customer: Customer) -> list[tuple[License, int]]:
    """The customer's licenses, each with how many installations use it (one query)."""
    counts = installation_counts(session, customer)
    return [(lic, counts.get(lic.id, 0)) for lic in customer.licenses]


def list_customers(session: Session) -> list[Customer]:
    """Every customer, by name."""
    return list(session.scalars(select(Customer).order_by(Customer.name, Customer.slug)))


def hold(session: Session, customer: Customer) -> None:
    """Hold ``customer``'s row until the transaction ends (``FOR UPDATE`` on PostgreSQL) and
    re-read what was loaded, so that a check of the current version (``If-Match``) and the change
    it guards see the latest state of the customer, their contracts and licenses: two changes to
    one customer run one after the other, and the second sees the first."""
    session.expire_all()
    session.refresh(customer, with_for_update=True)


def renewed_by(contract: Contract) -> Contract | None:
    """The contract that continues ``contract``: the first of the same customer, kind and
    product that starts after it ends (what :func:`renew_contract` makes), if any."""
    later = [
        c
        for c in contract.customer.contracts
        if c.kind == contract.kind
        and c.product_id == contract.product_id
        and c.starts_on > contract.ends_on
    ]
    return min(later, key=lambda c: (c.starts_on, c.id)) if later else None


def get_contract(session: Session, contract_id: int) -> Contract:
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise NotFoundError(f"no contract {contract_id}")
    return contract


def end_contract(
    session: Session, contract: Contract, ends_on: date | None = None, *, actor: str
) -> Contract:
    """End a contract early: its last covered day becomes ``ends_on`` (today by default), a day
    between its first day and its current end."""
    last_day = ends_on or utcnow().date()
    if last_day > contract.ends_on:
        raise InvalidInputError(
            "ends_on", f"must not be after the contract's end ({contract.ends_on.isoformat()})"
        )
    if last_day < contract.starts_on:
        raise InvalidInputError(
            "ends_on", f"must not be before the contract starts ({contract.starts_on})"
        )
    if last_day != contract.ends_on:
        previous = contract.ends_on
        contract.ends_on = last_day
        audit.record(
            session,
            actor,
            "contract.end",
            contract.customer.slug,
            contract=contract.id,
            ends_on=last_day.isoformat(),
            was=previous.isoformat(),
        )
        session.commit()
    return contract


def get_license(session: Session, license_id: int) -> License:
    lic = session.get(License, license_id)
    if lic is None:
        raise NotFoundError(f"no license {license_id}")
    return lic


def set_license_cap(
    session: Session, lic: License, max_installations: int | None, *, actor: str
) -> License:
    """How many installations may use ``lic`` (None: no limit). Installations over a lowered
    cap are not removed; new ones are refused."""
    if max_installations is not None and max_installations < 1:
        raise InvalidInputError("max_installations", "must be at least 1 (or null for no limit)")
    if lic.max_installations != max_installations:
        lic.max_installations = max_installations
        audit.record(
            session,
            actor,
            "license.cap",
            f"{lic.customer.slug}/{lic.key_prefix}",
            max_installations=max_installations,
        )
        session.commit()
    return lic
