"""The installations the server knows: what each one last reported, with its customer and
license (``vigor installation list``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain.csv_input import write_table
from server.domain.customers import get_customer
from server.domain.models import Customer, Installation, License, Product
from server.domain.products import get_product
from server.domain.trust import iso


@dataclass(frozen=True)
class InstallationFilter:
    """Which installations to list; None (or "") for no condition."""

    customer: str | None = None  # slug
    product: str | None = None  # slug
    version: str | None = None  # as the agent reported it
    seen_before: datetime | None = None  # last seen strictly before
    seen_after: datetime | None = None  # last seen at or after


@dataclass(frozen=True)
class InstallationRow:
    customer: str
    product: str
    license_id: int
    license_prefix: str
    uid: str
    version: str
    platform: str
    channel: str
    first_seen: datetime
    last_seen: datetime


CSV_COLUMNS = (
    "customer",
    "product",
    "license_id",
    "license_prefix",
    "installation_id",
    "version",
    "platform",
    "channel",
    "first_seen",
    "last_seen",
)


def list_installations(session: Session, wanted: InstallationFilter) -> list[InstallationRow]:
    """Installations matching ``wanted``, by customer, product and installation id (one query).

    Raises:
        NotFoundError: the customer or product named does not exist.
    """
    query = (
        select(
            Customer.slug,
            Product.slug,
            License.id,
            License.key_prefix,
            Installation.uid,
            Installation.version,
            Installation.platform,
            Installation.channel,
            Installation.first_seen,
            Installation.last_seen,
        )
        .join(License, License.id == Installation.license_id)
        .join(Customer, Customer.id == License.customer_id)
        .join(Product, Product.id == License.product_id)
        .order_by(Customer.slug, Product.slug, Installation.uid)
    )
    if wanted.customer:
        query = query.where(License.customer_id == get_customer(session, wanted.customer).id)
    if wanted.product:
        query = query.where(License.product_id == get_product(session, wanted.product).id)
    if wanted.version:
        query = query.where(Installation.version == wanted.version)
    if wanted.seen_before is not None:
        query = query.where(Installation.last_seen < wanted.seen_before)
    if wanted.seen_after is not None:
        query = query.where(Installation.last_seen >= wanted.seen_after)
    rows: list[Any] = list(session.execute(query).all())
    return [InstallationRow(*row) for row in rows]


def as_csv(rows: Sequence[InstallationRow]) -> str:
    """The rows as CSV with a header line (times in ISO-8601 UTC)."""
    return write_table(
        CSV_COLUMNS,
        (
            (
                r.customer,
                r.product,
                r.license_id,
                r.license_prefix,
                r.uid,
                r.version,
                r.platform,
                r.channel,
                iso(r.first_seen),
                iso(r.last_seen),
            )
            for r in rows
        ),
    )
