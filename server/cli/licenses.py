"""``vigor license``: the keys installations present. A key is printed once when it is issued
(only its hash is stored); a license can be suspended, reactivated, or revoked for good."""

from __future__ import annotations

import click
from sqlalchemy import select

from server.cli.common import ACTOR, command, transaction
from server.domain import customers, products
from server.domain.models import License
from server.domain.vocabulary import LicenseStatus


@click.group("license")
def license_group() -> None:
    """Licenses: issue (key shown once), suspend, revoke, list."""


@command(license_group, "issue")
@click.option("--customer", "customer_slug", required=True)
@click.option("--product", "product_slug", required=True)
@click.option("--max-installations", type=click.IntRange(1), default=None)
@click.option("--label", default="")
def license_issue(
    customer_slug: str, product_slug: str, max_installations: int | None, label: str
) -> None:
    """Issue a license. The key is printed once; only its hash is stored."""
    with transaction() as session:
        lic, key = customers.issue_license(
            session,
            customers.get_customer(session, customer_slug),
            products.get_product(session, product_slug),
            actor=ACTOR,
            label=label,
            max_installations=max_installations,
        )
        click.echo(key)
        click.echo(
            f"license {lic.id} for {customer_slug}/{product_slug}; the key above is not shown again",
            err=True,
        )


def _status_command(name: str, status: LicenseStatus, help_text: str) -> click.Command:
    """``vigor license NAME KEY``: set the license's status to ``status``."""

    @command(license_group, name, help=help_text)
    @click.argument("key")
    def set_status(key: str) -> None:
        with transaction() as session:
            lic = customers.set_license_status(
                session, customers.find_license(session, key), status, actor=ACTOR
            )
            click.echo(f"license {lic.id} ({lic.key_prefix}…) is {lic.status}")

    return set_status


license_suspend = _status_command(
    "suspend",
    LicenseStatus.SUSPENDED,
    "Suspend a license (KEY: the key, its listed prefix, or its id).",
)
license_reactivate = _status_command("reactivate", LicenseStatus.ACTIVE, "Lift a suspension.")
license_revoke = _status_command("revoke", LicenseStatus.REVOKED, "Revoke a license for good.")


@command(license_group, "list")
def license_list() -> None:
    """List licenses (prefixes only; keys are never stored)."""
    with transaction() as session:
        counts = customers.installation_counts(session)
        for lic in session.scalars(select(License).order_by(License.id)):
            cap = lic.max_installations or "-"
            used = counts.get(lic.id, 0)
            click.echo(
                f"{lic.id:5} {lic.key_prefix}…  {lic.customer.slug:16} {lic.product.slug:14} "
                f"{lic.status:10} installations {used}/{cap}"
            )
