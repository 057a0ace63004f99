"""``vigor product``: the applications the vendor ships, their lapse policy, and the lifecycle
of their lines (``4.x`` supported, security-only, end of life)."""

from __future__ import annotations

import click
from sqlalchemy import select

from server.cli.common import ACTOR, choice_option, command, transaction
from server.domain import products
from server.domain.models import Product
from server.domain.vocabulary import LapsePolicy, LineStatus, values


@click.group()
def product() -> None:
    """Products and their lines."""


@command(product, "add")
@click.argument("slug")
@click.option("--name", default="", help="Display name (default: the slug).")
@choice_option("--lapse-policy", LapsePolicy, LapsePolicy.FALLBACK)
@click.option(
    "--security-carveout-months", type=click.IntRange(0, 120), default=0, show_default=True
)
@click.option("--grace-days", type=click.IntRange(0, 365), default=0, show_default=True)
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="Zone in which contract days begin and end.",
)
@click.option("--renewal-url", default=None)
@click.option(
    "--reminder-days",
    default="60,30,7",
    show_default=True,
    help="Days before maintenance ends on which customers get a renewal reminder.",
)
def product_add(
    slug: str,
    name: str,
    lapse_policy: str,
    security_carveout_months: int,
    grace_days: int,
    timezone: str,
    renewal_url: str | None,
    reminder_days: str,
) -> None:
    """Add a product."""
    with transaction() as session:
        p = products.add_product(
            session,
            slug,
            name,
            actor=ACTOR,
            lapse_policy=lapse_policy,
            security_carveout_months=security_carveout_months,
            grace_days=grace_days,
            timezone=timezone,
            renewal_url=renewal_url,
            reminder_days=reminder_days,
        )
        click.echo(f"product {p.slug} added")


@command(product, "list")
def product_list() -> None:
    """List products and their lines."""
    with transaction() as session:
        for p in session.scalars(select(Product).order_by(Product.slug)):
            lines = (
                ", ".join(f"{line.name} ({line.status})" for line in p.lines) or "no releases yet"
            )
            click.echo(f"{p.slug:20} {p.name} — {lines}")


@command(product, "line")
@click.argument("slug")
@click.argument("line")
@click.argument("status", type=click.Choice(values(LineStatus)))
def product_line(slug: str, line: str, status: str) -> None:
    """Set a product line's lifecycle status."""
    with transaction() as session:
        products.set_line_status(
            session, products.get_product(session, slug), line, status, actor=ACTOR
        )
        click.echo(f"{slug} {line} is now {status}")


@command(product, "reminders")
@click.argument("slug")
@click.argument("days")
def product_reminders(slug: str, days: str) -> None:
    """Set the days before maintenance ends on which a renewal reminder is e-mailed
    (e.g. "90,30,7"; "" for none). Reminders on the day it lapses and after the grace period
    are sent as well."""
    with transaction() as session:
        stored = products.set_reminder_days(
            session, products.get_product(session, slug), days, actor=ACTOR
        )
        click.echo(f"{slug}: renewal reminders {stored or 'off'} days before maintenance ends")


@command(product, "renewal-url")
@click.argument("slug")
@click.argument("url", required=False, default=None)
def product_renewal_url(slug: str, url: str | None) -> None:
    """Set the product's renewal link (no URL: the instance's VIGOR_RENEWAL_URL applies).

    URL may hold {customer}, {license}, {product} and {ends_on}, filled in for each license
    where its customer sees the link (check answers, the portal, offline bundles).
    """
    with transaction() as session:
        p = products.set_renewal_url(
            session, products.get_product(session, slug), url or None, actor=ACTOR
        )
        click.echo(f"{p.slug} renewal link: {p.renewal_url or 'VIGOR_RENEWAL_URL'}")
