"""Bringing an existing customer base in from a CSV file: customers, their contracts, the license
keys already in their installations, and those installations' versions (docs/import.md).

A row describes one customer and, optionally, one contract, one license and one installation of
that license; a customer with several contracts or licenses takes several rows. The import runs
in three steps, and nothing is written before the third:

1. **Read** every row into parts (:func:`parse_row`); a bad field is a problem of its line.
2. **Plan**: merge the parts that name the same thing (identical repetitions are one; a customer,
   license or installation described two different ways is a problem of the later line), then
   look everything up at once — customers by slug, licenses by the SHA-256 of their key,
   contracts by customer, kind, product and dates, installations by license and id — in a few
   chunked queries. What exists already is left as it is, so running the same file again
   changes nothing.
3. **Apply**, only when no line has a problem and this is not a dry run: bulk inserts and their
   audit events in **one** transaction.

Existing keys are stored as Vigor stores its own: the SHA-256 of the key and a short display
prefix, never the key. An installation presenting an imported key is served like any other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.csv_input import CsvRow, Problem, read_table, write_table
from server.domain.customers import split_emails
from server.domain.errors import ConflictError, InvalidInputError
from server.domain.import_rows import (
    COLUMNS,
    ContractPart,
    CustomerPart,
    InstallationPart,
    LicensePart,
    parse_row,
)
from server.domain.models import Contract, Customer, Installation, License, Product
from server.domain.vocabulary import LicenseStatus

__all__ = ["COLUMNS", "ImportReport", "import_customers", "parse_row", "template"]

CHUNK = 500  # values per IN (...) query, well under every driver's parameter limit
NOTE = "imported"

T = TypeVar("T")


# --------------------------------------------------------------------------- 2. the plan


@dataclass
class ImportReport:
    """What an import found and did; ``applied`` is False for a dry run or a refused file."""

    rows: int = 0
    created: Counter[str] = field(default_factory=Counter)  # customers, contracts, …
    unchanged: Counter[str] = field(default_factory=Counter)
    errors: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    applied: bool = False

    @property
    def changes(self) -> int:
        return sum(self.created.values())

    def summary(self) -> str:
        """``"3 customers, 3 contracts new; 2 licenses unchanged"`` (what the counts say)."""

        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{n} {what}" for what, n in counter.items() if n)

        new, same = counts(self.created), counts(self.unchanged)
        return "; ".join(
            part for part in (new and f"{new} new", same and f"{same} unchanged") if part
        ) or ("nothing to import")


@dataclass
class _Plan:
    report: ImportReport
    customers: dict[str, CustomerPart] = field(default_factory=dict)  # new ones
    customer_ids: dict[str, int] = field(default_factory=dict)  # existing ones
    contracts: list[ContractPart] = field(default_factory=list)  # new ones
    licenses: dict[str, LicensePart] = field(default_factory=dict)  # new ones, by key hash
    license_ids: dict[str, int] = field(default_factory=dict)  # existing ones, by key hash
    installations: list[InstallationPart] = field(default_factory=list)  # new ones
    products: dict[str, int] = field(default_factory=dict)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _merge(
    seen: dict[Any, tuple[Any, int]], key: Any, part: Any, line: int, what: str
) -> str | None:
    """Remember ``part`` under ``key``; a problem when an earlier line described it otherwise
    (fields left empty on either line do not count)."""
    if key not in seen:
        seen[key] = (part, line)
        return None
    earlier, first = seen[key]
    differing = [
        name
        for name, mine in vars(part).items()
        if mine not in ("", None) and vars(earlier)[name] not in ("", None, mine)
    ]
    if differing:
        return f"{what} differs from line {first} in {', '.join(differing)}"
    filled = {n: v for n, v in vars(part).items() if vars(earlier)[n] in ("", None)}
    if filled:
        seen[key] = (type(earlier)(**{**vars(earlier), **filled}), first)
    return None


def plan_import(session: Session, rows: Sequence[CsvRow], now: datetime) -> _Plan:
    """Read, merge and look up everything the rows describe; see the module docstring."""
    plan = _Plan(ImportReport(rows=len(rows)))
    report = plan.report
    customers: dict[Any, tuple[Any, int]] = {}
    licenses: dict[Any, tuple[Any, int]] = {}
    installations: dict[Any, tuple[Any, int]] = {}
    contracts: dict[ContractPart, int] = {}
    first_of: dict[tuple[tuple[str, str], ...], int] = {}
    for row in rows:
        parts, problems = parse_row(row, now)
        if parts is None:
            report.errors.append(Problem(row.line, "; ".join(problems)))
            continue
        same = tuple(sorted((k, v.strip()) for k, v in row.fields.items() if v.strip()))
        if same in first_of:
            report.notes.append(Problem(row.line, f"repeats line {first_of[same]}"))
        first_of.setdefault(same, row.line)
        found = [
            _merge(customers, parts.customer.slug, parts.customer, row.line, "customer"),
            parts.license
            and _merge(licenses, parts.license.key_hash, parts.license, row.line, "license"),
            parts.installation
            and _merge(
                installations,
                (parts.installation.key_hash, parts.installation.uid),
                parts.installation,
                row.line,
                "installation",
            ),
        ]
        if parts.contract is not None:
            contracts.setdefault(parts.contract, row.line)
        problems = [p for p in found if p]
        if problems:
            report.errors.append(Problem(row.line, "; ".join(problems)))
    plan.products = dict(session.execute(select(Product.slug, Product.id)).all())
    _plan_customers(session, plan, customers)
    _plan_licenses(session, plan, licenses)
    _plan_contracts(session, plan, contracts)
    _plan_installations(session, plan, installations)
    report.errors = sorted(set(report.errors), key=lambda p: (p.line, p.message))
    return plan


def _plan_customers(session: Session, plan: _Plan, seen: dict[Any, tuple[Any, int]]) -> None:
    slugs = list(seen)
    for chunk in _chunks(slugs):
        for row in session.execute(
            select(
                Customer.id,
                Customer.slug,
                Customer.name,
                Customer.contact_emails,
                Customer.language,
            ).where(Customer.slug.in_(chunk))
        ):
            plan.customer_ids[row.slug] = row.id
            part, line = seen[row.slug]
            stored = {
                "name": row.name,
                "email": ", ".join(row.contact_emails or []),
                "language": row.language,
            }
            differing = [k for k, v in stored.items() if getattr(part, k) not in ("", v)]
            if differing:
                plan.report.notes.append(
                    Problem(
                        line,
                        f"customer {row.slug} exists; its {', '.join(differing)} left as they are",
                    )
                )
    plan.report.unchanged["customers"] = len(plan.customer_ids)
    plan.customers = {s: p for s, (p, _) in seen.items() if s not in plan.customer_ids}
    plan.report.created["customers"] = len(plan.customers)


def _plan_licenses(session: Session, plan: _Plan, seen: dict[Any, tuple[Any, int]]) -> None:
    hashes = list(seen)
    for chunk in _chunks(hashes):
        for row in session.execute(
            select(License.id, License.key_hash, Customer.slug, Product.slug.label("product"))
            .join(Customer, Customer.id == License.customer_id)
            .join(Product, Product.id == License.product_id)
            .where(License.key_hash.in_(chunk))
        ):
            part, line = seen[row.key_hash]
            if (row.slug, row.product) != (part.customer, part.product):
                plan.report.errors.append(
                    Problem(
                        line,
                        f"license_key: this key is already a license of {row.slug} "
                        f"for {row.product}",
                    )
                )
            plan.license_ids[row.key_hash] = row.id
    for key_hash, (part, line) in seen.items():
        if part.product not in plan.products:
            plan.report.errors.append(Problem(line, f"product: no product {part.product!r}"))
        elif key_hash not in plan.license_ids:
            plan.licenses[key_hash] = part
    plan.report.created["licenses"] = len(plan.licenses)
    plan.report.unchanged["licenses"] = len(plan.license_ids)


def _plan_contracts(session: Session, plan: _Plan, seen: dict[ContractPart, int]) -> None:
    by_id = {v: k for k, v in plan.customer_ids.items()}
    product_slugs = {v: k for k, v in plan.products.items()}
    existing: set[ContractPart] = set()
    for chunk in _chunks(list(by_id)):
        for row in session.execute(
            select(
                Contract.customer_id,
                Contract.kind,
                Contract.product_id,
                Contract.starts_on,
                Contract.ends_on,
            ).where(Contract.customer_id.in_(chunk))
        ):
            product = product_slugs.get(row.product_id) if row.product_id else None
            existing.add(
                ContractPart(by_id[row.customer_id], row.kind, product, row.starts_on, row.ends_on)
            )
    for part, line in seen.items():
        if part.product is not None and part.product not in plan.products:
            plan.report.errors.append(Problem(line, f"product: no product {part.product!r}"))
        elif part in existing:
            plan.report.unchanged["contracts"] += 1
        else:
            plan.contracts.append(part)
    plan.report.created["contracts"] = len(plan.contracts)


def _plan_installations(session: Session, plan: _Plan, seen: dict[Any, tuple[Any, int]]) -> None:
    ids = list(plan.license_ids.values())
    existing: set[tuple[int, str]] = set()
    in_use: Counter[int] = Counter()
    for chunk in _chunks(ids):
        for license_id, uid in session.execute(
            select(Installation.license_id, Installation.uid).where(
                Installation.license_id.in_(chunk)
            )
        ):
            existing.add((license_id, uid))
            in_use[license_id] += 1
    caps = _caps(session, plan, ids)
    adding: Counter[str] = Counter()
    for (key_hash, uid), (part, line) in seen.items():
        known = plan.license_ids.get(key_hash)
        if known is not None and (known, uid) in existing:
            plan.report.unchanged["installations"] += 1
            continue
        cap = caps.get(key_hash)
        used = in_use[known] if known is not None else 0
        if cap is not None and used + adding[key_hash] >= cap:
            plan.report.errors.append(
                Problem(line, f"max_installations: the license allows {cap} installation(s)")
            )
            continue
        adding[key_hash] += 1
        plan.installations.append(part)
    plan.report.created["installations"] = len(plan.installations)


def _caps(session: Session, plan: _Plan, ids: list[int]) -> dict[str, int | None]:
    """Each license's installation cap by key hash: the stored one for existing licenses."""
    caps: dict[str, int | None] = {h: p.max_installations for h, p in plan.licenses.items()}
    for chunk in _chunks(ids):
        caps.update(
            session.execute(
                select(License.key_hash, License.max_installations).where(License.id.in_(chunk))
            ).all()
        )
    return caps


# --------------------------------------------------------------------------- 3. apply


def import_customers(
    session: Session,
    data: bytes,
    *,
    actor: str,
    now: datetime,
    dry_run: bool = False,
    source: str = "",
) -> ImportReport:
    """Import the customers, contracts, licenses and installations of a CSV file
    (docs/import.md), all in one transaction, or nothing when any line has a problem.

    Args:
        data: the file's bytes (UTF-8, with or without a byte-order mark; ``,`` or ``;``).
        dry_run: report what would happen and write nothing.
        source: the file's name, for the audit trail.

    Raises:
        InvalidInputError: the file as a whole is unreadable (not UTF-8, no header, unknown
            column, an unclosed quote); problems of single rows are in the report instead.
        ConflictError: the database changed under the import (run it again).
    """
    table = read_table(data, COLUMNS)
    if "customer" not in table.columns:
        raise InvalidInputError("file", "line 1: the header has no 'customer' column")
    plan = plan_import(session, table.rows, now)
    report = plan.report
    if report.errors or dry_run or not report.changes:
        session.rollback()
        return report
    try:
        _apply(session, plan, actor=actor, now=now, source=source)
        session.commit()
        _refresh_statistics(session)
    except IntegrityError:
        session.rollback()
        raise ConflictError(
            "the database changed while the file was imported; nothing was imported, run it again"
        ) from None
    report.applied = True
    return report


def _refresh_statistics(session: Session) -> None:
    """Tell PostgreSQL's planner the tables grew: until autovacuum does, it plans for the empty
    tables it knew, and the next import's lookups (500 values per IN) scan whole tables."""
    if session.get_bind().dialect.name != "postgresql":
        return
    tables = (Customer, Contract, License, Installation)
    try:
        session.execute(text("ANALYZE " + ", ".join(m.__tablename__ for m in tables)))
        session.commit()
    except SQLAlchemyError:  # the import is committed; autovacuum will analyze in time
        session.rollback()


def _insert(session: Session, model: Any, rows: list[dict[str, Any]], *returning: Any) -> list[Any]:
    if not rows:
        return []
    if not returning:
        session.execute(insert(model), rows)
        return []
    return list(session.execute(insert(model).returning(*returning), rows))


def _apply(session: Session, plan: _Plan, *, actor: str, now: datetime, source: str) -> None:
    customer_ids = dict(plan.customer_ids)
    for slug, customer_id in _insert(
        session,
        Customer,
        [
            {
                "slug": c.slug,
                "name": c.name or c.slug,
                "contact_emails": split_emails(c.email),
                "language": c.language,
                "created_at": now,
            }
            for c in plan.customers.values()
        ],
        Customer.slug,
        Customer.id,
    ):
        customer_ids[slug] = customer_id
    _insert(
        session,
        Contract,
        [
            {
                "customer_id": customer_ids[c.customer],
                "kind": c.kind,
                "product_id": plan.products[c.product] if c.product else None,
                "starts_on": c.starts_on,
                "ends_on": c.ends_on,
                "note": NOTE,
                "created_at": now,
            }
            for c in plan.contracts
        ],
    )
    license_ids = dict(plan.license_ids)
    for key_hash, license_id in _insert(
        session,
        License,
        [
            {
                "customer_id": customer_ids[lic.customer],
                "product_id": plan.products[lic.product],
                "key_hash": lic.key_hash,
                "key_prefix": lic.key_prefix,
                "label": lic.label,
                "status": lic.status or LicenseStatus.ACTIVE,
                "max_installations": lic.max_installations,
                "created_at": now,
                "status_changed_at": now
                if lic.status not in (None, LicenseStatus.ACTIVE)
                else None,
            }
            for lic in plan.licenses.values()
        ],
        License.key_hash,
        License.id,
    ):
        license_ids[key_hash] = license_id
    _insert(
        session,
        Installation,
        [
            {
                "license_id": license_ids[i.key_hash],
                "uid": i.uid,
                "version": i.version,
                "platform": i.platform,
                "channel": i.channel,
                "first_seen": i.last_seen or now,
                "last_seen": i.last_seen or now,
            }
            for i in plan.installations
        ],
    )
    _audit(session, plan, actor, source)


def _audit(session: Session, plan: _Plan, actor: str, source: str) -> None:
    """One event per customer, contract and license added, as adding them by hand records, and
    one for the import itself."""
    for c in plan.customers.values():
        audit.record(session, actor, "customer.add", c.slug, name=c.name or c.slug, source="import")
    for k in plan.contracts:
        audit.record(
            session,
            actor,
            "contract.add",
            k.customer,
            kind=k.kind,
            product=k.product or "all",
            starts_on=k.starts_on.isoformat(),
            ends_on=k.ends_on.isoformat(),
            source="import",
        )
    for lic in plan.licenses.values():
        audit.record(
            session,
            actor,
            "license.issue",
            f"{lic.customer}/{lic.key_prefix}",
            product=lic.product,
            max_installations=lic.max_installations,
            status=lic.status or LicenseStatus.ACTIVE,
            source="import",
        )
    audit.record(
        session,
        actor,
        "import.customers",
        source,
        **dict(plan.report.created),
        rows=plan.report.rows,
    )


def template() -> str:
    """The CSV template: every column, and example rows (a customer with a contract for every
    product, one with an existing key and an installation)."""
    example = [
        {
            "customer": "initech",
            "name": "Initech",
            "email": "it@initech.example",
            "language": "en",
            "contract_kind": "maintenance",
            "contract_from": "2026-01-01",
            "contract_to": "2026-12-31",
        },
        {
            "customer": "initech",
            "product": "acme-erp",
            "license_key": "ACME-7K2Q-99XF-4LMN-PQ3R",
            "license_label": "head office",
            "max_installations": "5",
            "installation_id": "legacy-000000000001",
            "version": "4.2.0",
            "platform": "windows-x86_64",
            "last_seen": "15/03/2026",
        },
        {
            "customer": "panaderia-sol",
            "name": "Panadería Sol, S.L.",
            "language": "es",
            "product": "acme-erp",
            "contract_from": "1 ene 2026",
            "contract_to": "31 dic 2026",
            "license_key": "SOL-2019-0042-ABCD-EFGH",
        },
    ]
    return write_table(COLUMNS, ([row.get(c, "") for c in COLUMNS] for row in example))
