"""``vigor import``: bring data from another system in (docs/import.md).

``customers`` reads customers, contracts, existing license keys and installations from a CSV
file in one transaction (or nothing, naming every bad line); ``--dry-run`` only reports.
``releases`` publishes a release history from a folder and a CSV file through the ordinary
publish path, each with its historical date. ``template`` prints the customers CSV template.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from server.cli.common import ACTOR, command, fail, now, services, transaction
from server.domain import customer_import, publishing, release_import


@click.group("import")
def import_group() -> None:
    """Import customers, contracts, licenses and release history from other systems."""


@command(import_group, "customers")
@click.argument("csv_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
def import_customers(csv_file: Path, dry_run: bool) -> None:
    """Import customers, contracts, existing license keys and installations from CSV_FILE.

    One transaction: a file with a bad line imports nothing, and every bad line is named.
    Running the same file again changes nothing.
    """
    data = csv_file.read_bytes()
    with transaction() as session:
        report = customer_import.import_customers(
            session, data, actor=ACTOR, now=now(), dry_run=dry_run, source=csv_file.name
        )
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for problem in report.errors:
        click.echo(f"error: {problem}", err=True)
    if report.errors:
        lines = len({p.line for p in report.errors})
        raise fail(
            f"{csv_file}: {lines} line(s) with problems; nothing was imported"
            + (" (dry run)" if dry_run else "")
        )
    if dry_run:
        click.echo(f"dry run, nothing changed: {report.rows} rows; would be {report.summary()}")
    elif report.applied:
        click.echo(f"imported {report.rows} rows: {report.summary()}")
    else:
        click.echo(f"nothing changed: {report.rows} rows; {report.summary()}")


@command(import_group, "template", needs_app=False)
def import_template() -> None:
    """Print the customers CSV template (every column, with example rows)."""
    sys.stdout.write(customer_import.template())


@command(import_group, "releases")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option(
    "--csv",
    "csv_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="One row per release: version, kind, severity, date, notes, file.PLATFORM columns.",
)
@click.option("--product", required=True, help="The product the releases are of.")
@click.option("--dry-run", is_flag=True, help="Check the file and the files; publish nothing.")
def import_releases(folder: Path, csv_file: Path, product: str, dry_run: bool) -> None:
    """Publish a release history: each row of the CSV file, with its files from FOLDER, through
    the ordinary publish path with its historical date. Versions that exist are skipped; a bad
    row or a missing file stops the import before anything is published."""
    vigor = services()
    with transaction() as session:
        plan = release_import.plan_releases(
            session, product, csv_file.read_bytes(), folder, now=now()
        )
    for skipped in plan.skipped:
        click.echo(f"skipped: {skipped}")
    for problem in plan.errors:
        click.echo(f"error: {problem}", err=True)
    if plan.errors:
        raise fail(f"{csv_file}: {len(plan.errors)} line(s) with problems; nothing was published")
    if dry_run:
        click.echo(f"dry run: {len(plan.releases)} release(s) would be published")
        return
    signer = vigor.signer("release")
    for spec, incoming in plan.releases:
        with transaction() as session:
            publishing.publish(
                session,
                vigor.store,
                signer,
                spec,
                incoming,
                actor=ACTOR,
                max_size=vigor.settings.max_upload_bytes,
            )
        click.echo(f"published {spec.product} {spec.version} ({spec.published_at:%Y-%m-%d})")
    click.echo(f"{len(plan.releases)} published, {len(plan.skipped)} skipped")
