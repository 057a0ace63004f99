"""Machines without internet: ``vigor bundle export`` writes, for one license, everything it may
install as one file the agent verifies offline (``vigor installation import`` records the status
file such an installation writes and the operator carries back: server/cli/installations.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from server.cli.common import command, now, services, transaction
from server.domain import bundles, customers, releases
from server.domain.vocabulary import DEFAULT_CHANNEL


@click.group()
def bundle() -> None:
    """Offline bundles for machines without internet."""


@command(bundle, "export")
@click.option(
    "--license", "license_key", required=True, help="The license key (or its listed prefix or id)."
)
@click.option("--since", default=None, help="Only releases newer than this installed version.")
@click.option("--platform", "platform", default="linux-x86_64", show_default=True)
@click.option("--channel", default=DEFAULT_CHANNEL, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def bundle_export(
    license_key: str, since: str | None, platform: str, channel: str, out: Path
) -> None:
    """Write everything a license may install, verifiable offline, to one file."""
    vigor = services()
    with transaction() as session:
        lic = customers.find_license(session, license_key)
        catalog = vigor.catalogs.for_license(session, lic, vigor.settings.renewal_url)
        plan = bundles.plan_bundle(
            lic,
            catalog,
            since=releases.parse_version(since, "--since") if since else None,
            platform=platform,
            channel=channel,
            now=now(),
        )
        size = bundles.write_bundle(session, vigor.store, vigor.signer("check"), plan, out)
        versions = ", ".join(sorted(plan.manifests, key=releases.parse_version)) or "none"
        click.echo(
            f"{out}: {size} bytes; releases: {versions}; maintenance "
            f"{plan.statement['entitlement']['status']}"
        )
