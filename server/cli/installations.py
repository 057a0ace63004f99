"""``vigor installation``: the running copies of the vendor's products. ``list`` shows what each
one last reported (filters by customer, product, version and when last seen; ``--csv``);
``import`` records the status file an offline installation wrote (``vigor-agent status
--export``) and the operator carried back."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from server.cli.common import ACTOR, command, fail, transaction
from server.domain import installations, status_files
from server.domain.csv_input import parse_moment
from server.domain.errors import InvalidInputError
from server.domain.trust import iso


@click.group()
def installation() -> None:
    """Installations."""


@command(installation, "import")
@click.argument("status_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def installation_import(status_file: Path) -> None:
    """Import a status file an offline installation wrote (`vigor-agent status --export`)."""
    try:
        document = json.loads(status_file.read_text())
    except ValueError:
        raise fail(f"{status_file} is not JSON") from None
    with transaction() as session:
        result = status_files.import_status(session, document, actor=ACTOR)
    seen = "new installation" if result.first_seen else "installation"
    click.echo(
        f"{seen} {result.installation_id}: version {result.installed_version}, "
        f"{result.reports} report(s) recorded"
    )


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value, option)
    except InvalidInputError as exc:
        raise fail(exc.message) from None


@command(installation, "list")
@click.option("--customer", default=None, help="Only this customer's (slug).")
@click.option("--product", default=None, help="Only this product's (slug).")
@click.option("--version", "version", default=None, help="Only those running this version.")
@click.option("--seen-before", default=None, help="Last seen before this day or time.")
@click.option("--seen-after", default=None, help="Last seen on or after this day or time.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line, for spreadsheets.")
def installation_list(
    customer: str | None,
    product: str | None,
    version: str | None,
    seen_before: str | None,
    seen_after: str | None,
    as_csv: bool,
) -> None:
    """List installations with their customer, license, version, platform and last check."""
    with transaction() as session:
        rows = installations.list_installations(
            session,
            installations.InstallationFilter(
                customer=customer,
                product=product,
                version=version,
                seen_before=_moment(seen_before, "--seen-before"),
                seen_after=_moment(seen_after, "--seen-after"),
            ),
        )
    if as_csv:
        click.echo(installations.as_csv(rows), nl=False)
        return
    for r in rows:
        click.echo(
            f"{r.customer:16} {r.product:14} {r.license_prefix}…  {r.uid:40} {r.version:12} "
            f"{r.platform:16} {r.channel:8} {iso(r.last_seen)}"
        )
    click.echo(f"{len(rows)} installation(s)", err=True)
