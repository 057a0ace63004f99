"""``vigor customer`` and ``vigor contract``: the companies that buy maintenance, the people at
them who sign in to the portal, and the contracts that decide what they are entitled to.

A portal user is added without a password; the command prints their set-password link once
(on stdout, so that it can be piped into an e-mail; the note about it goes to stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cli.common import ACTOR, choice_option, command, fail, now, services, transaction
from server.domain import customers, messages, portal_users, products
from server.domain.models import Customer
from server.domain.trust import iso
from server.domain.vocabulary import ContractKind


@click.group()
def customer() -> None:
    """Customers."""


@command(customer, "add")
@click.argument("slug")
@click.option("--name", default="")
@click.option(
    "--email",
    "emails",
    multiple=True,
    help="A contact e-mail; repeat it, or separate addresses with commas, for several.",
)
@click.option(
    "--language",
    type=click.Choice(messages.LANGUAGES),  # a catalogue file is a language
    default=None,
    help="Portal and check messages; default: each reader's browser or agent language.",
)
@click.option("--notes", default="", help="The vendor's own notes about the customer.")
def customer_add(
    slug: str, name: str, emails: tuple[str, ...], language: str | None, notes: str
) -> None:
    """Add a customer."""
    with transaction() as session:
        c = customers.add_customer(
            session,
            slug,
            name,
            actor=ACTOR,
            contact_emails=[e for text in emails for e in customers.split_emails(text)],
            language=language or "",
            notes=notes,
        )
        click.echo(f"customer {c.slug} added")


@command(customer, "list")
def customer_list() -> None:
    """List customers with their contracts and licenses."""
    with transaction() as session:
        for c in session.scalars(select(Customer).order_by(Customer.slug)):
            contracts = (
                "; ".join(
                    f"{k.kind} {k.product.slug if k.product else 'all'} {k.starts_on}..{k.ends_on}"
                    for k in c.contracts
                )
                or "no contracts"
            )
            click.echo(f"{c.slug:16} {c.name:24} {len(c.licenses)} license(s)  {contracts}")


@customer.group("user")
def customer_user() -> None:
    """Portal users: people at a customer who sign in with email and password."""


def _print_new_link(
    start: Callable[..., portal_users.Invitation], session: Session, *target: object
) -> None:
    """Start an invitation (``portal_users.invite`` or ``reset``) and print its link, once."""
    vigor = services()
    invitation = start(
        session, *target, secret_key=vigor.settings.require_secret(), actor=ACTOR, now=now()
    )
    click.echo(portal_users.set_password_link(vigor.settings.public_base_url, invitation.token))
    click.echo(
        f"set-password link for {invitation.user.email}, valid once until "
        f"{iso(invitation.expires_at)}; it is not shown again",
        err=True,
    )


@command(customer_user, "add")
@click.argument("customer_slug")
@click.argument("email")
def customer_user_add(customer_slug: str, email: str) -> None:
    """Add a portal user to a customer; prints their set-password link (shown once)."""
    with transaction() as session:
        c = customers.get_customer(session, customer_slug)
        _print_new_link(portal_users.invite, session, c, email)


@command(customer_user, "link")
@click.argument("email")
def customer_user_link(email: str) -> None:
    """Reset a portal user: clear the password, end their sessions, print a new link."""
    with transaction() as session:
        _print_new_link(portal_users.reset, session, portal_users.find_user(session, email))


@command(customer_user, "list")
@click.argument("customer_slug")
def customer_user_list(customer_slug: str) -> None:
    """List a customer's portal users."""
    with transaction() as session:
        for u in customers.get_customer(session, customer_slug).portal_users:
            last = iso(u.last_login_at) if u.last_login_at else "never signed in"
            click.echo(f"{u.email:40} {u.state:9} {last}")


def _set_disabled(email: str, disabled: bool) -> None:
    with transaction() as session:
        u = portal_users.find_user(session, email)
        u = portal_users.set_disabled(session, u, disabled, actor=ACTOR)
        click.echo(f"portal user {u.email} {'disabled' if disabled else 'enabled'}")


@command(customer_user, "disable")
@click.argument("email")
def customer_user_disable(email: str) -> None:
    """Disable a portal user: their sessions end at once and their links stop working."""
    _set_disabled(email, True)


@command(customer_user, "enable")
@click.argument("email")
def customer_user_enable(email: str) -> None:
    """Enable a disabled portal user again (with the password they had)."""
    _set_disabled(email, False)


@click.group()
def contract() -> None:
    """Maintenance and customization contracts."""


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


@command(contract, "add")
@click.option("--customer", "customer_slug", required=True)
@choice_option("--kind", ContractKind, ContractKind.MAINTENANCE)
@click.option("--product", "product_slug", default=None, help="Default: all products.")
@click.option("--from", "starts", required=True, metavar="YYYY-MM-DD")
@click.option(
    "--to", "ends", required=True, metavar="YYYY-MM-DD", help="Last covered day (inclusive)."
)
def contract_add(
    customer_slug: str, kind: str, product_slug: str | None, starts: str, ends: str
) -> None:
    """Record a contract covering whole days from FROM to TO inclusive."""
    with transaction() as session:
        c = customers.get_customer(session, customer_slug)
        p = products.get_product(session, product_slug) if product_slug else None
        k = customers.add_contract(
            session, c, kind, _date(starts, "--from"), _date(ends, "--to"), actor=ACTOR, product=p
        )
        click.echo(f"{k.kind} contract {k.id} for {c.slug}: {k.starts_on} to {k.ends_on}")
