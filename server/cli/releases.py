"""``vigor release``: publishing and managing releases.

``publish`` stores and hashes each file, signs the manifest and makes the release visible in one
transaction (or keeps it as a draft for ``publish-draft``); delta patches from earlier releases
are made afterwards by the worker, as a job queued in the same transaction (``patches`` makes any
that are missing, here and now). ``yank`` and ``rollout`` change what is offered; ``verify``
re-hashes the stored bytes and checks the manifest signature.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from server.bootstrap import verify_release
from server.cli.common import ACTOR, choice_option, command, fail, services, transaction
from server.domain import patches, publishing, releases
from server.domain.models import Release
from server.domain.vocabulary import DEFAULT_CHANNEL, ReleaseKind, Severity
from server.storage.base import StorageError

F = TypeVar("F", bound=Callable[..., Any])


def which_release(func: F) -> F:
    """The ``--product`` and ``--version`` options that name one release."""
    func = click.option("--version", "version", required=True)(func)
    return click.option("--product", required=True)(func)


def _parse_files(options: tuple[str, ...]) -> list[publishing.PathArtifact]:
    out = []
    for value in options:
        platform, sep, path = value.partition("=")
        if not sep or not platform or not path:
            raise fail(f"--file takes PLATFORM=PATH, not {value!r}")
        p = Path(path)
        if not p.is_file():
            raise fail(f"no such file: {path}")
        out.append(publishing.PathArtifact(platform=platform, path=p))
    return out


def _parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO-8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group()
def release() -> None:
    """Publish and manage releases."""


@command(release, "publish")
@which_release
@choice_option("--kind", ReleaseKind, required=True)
@choice_option("--severity", Severity)
@click.option("--channel", default=DEFAULT_CHANNEL, show_default=True)
@click.option(
    "--notes",
    "notes_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A Markdown file with the release notes.",
)
@click.option(
    "--min-from", default=None, help="Installs older than this version must step through it."
)
@click.option("--line", default=None, help="Product line (default: MAJOR.x).")
@click.option("--customer", "customers_", multiple=True, help="Customized build for this customer.")
@click.option("--file", "files", multiple=True, required=True, metavar="PLATFORM=PATH")
@click.option("--published-at", default=None, help="Import with its historical date (ISO-8601).")
@click.option("--draft", is_flag=True, help="Store it without publishing.")
def release_publish(
    product: str,
    version: str,
    kind: str,
    severity: str | None,
    channel: str,
    notes_file: Path | None,
    min_from: str | None,
    line: str | None,
    customers_: tuple[str, ...],
    files: tuple[str, ...],
    published_at: str | None,
    draft: bool,
) -> None:
    """Publish a release: store and hash each file, sign the manifest, make it visible."""
    incoming = _parse_files(files)
    spec = publishing.ReleaseSpec(
        product=product,
        version=version,
        kind=kind,
        severity=severity,
        channel=channel,
        notes=notes_file.read_text() if notes_file else "",
        min_from=min_from,
        line=line,
        published_at=_parse_when(published_at, "--published-at"),
        draft=draft,
        customers=customers_,
        platforms=tuple(i.platform for i in incoming),
    )
    vigor = services()
    signer = None if draft else vigor.signer("release")
    with transaction() as session:
        r = publishing.publish(
            session,
            vigor.store,
            signer,
            spec,
            incoming,
            actor=ACTOR,
            max_size=vigor.settings.max_upload_bytes,
        )
        state = "saved as a draft" if draft else "published"
        click.echo(f"{r.product.slug} {r.version} {state}")
        for a in r.artifacts:
            click.echo(f"  {a.platform:16} {a.size:>12} bytes  sha256 {a.sha256}")
        if not draft:
            click.echo("  delta patches from earlier releases: queued for the worker")


def _patches(release_id: int) -> None:
    """Make the patches to a release now, in this process (the worker's job does the same)."""
    try:
        made = services().make_patches(release_id)
    except (StorageError, OSError, ValueError) as exc:
        click.echo(
            f"warning: patches were not made ({exc}); run `vigor release patches` later", err=True
        )
        return
    click.echo(f"  {made} delta patch(es) from earlier releases")


def _patch_report(release_id: int) -> None:
    """Every patch to the release, made or skipped with why (as the admin release page)."""
    with transaction() as session:
        release = session.get(Release, release_id)
        lines = patches.patch_lines(session, release) if release is not None else []
    for line in lines:
        click.echo(f"  {line.platform} from {line.from_version}: {line.describe()}")


@command(release, "patches")
@which_release
def release_patches(product: str, version: str) -> None:
    """Make the missing delta patches to a release (from the previous release and the versions
    installations run, on each platform), then list every patch to it, made or skipped."""
    with transaction() as session:
        release_id = releases.find_release(session, product, version).id
    _patches(release_id)
    _patch_report(release_id)


@command(release, "publish-draft")
@which_release
def release_publish_draft(product: str, version: str) -> None:
    """Publish a release saved as a draft."""
    with transaction() as session:
        r = publishing.publish_draft(
            session,
            releases.find_release(session, product, version),
            services().signer("release"),
            ACTOR,
        )
        click.echo(f"{r.product.slug} {r.version} published")


@command(release, "list")
@click.option("--product", required=True)
@click.option("--json", "as_json", is_flag=True)
def release_list(product: str, as_json: bool) -> None:
    """List a product's releases, oldest first."""
    with transaction() as session:
        rows = releases.list_releases(session, product)
        if as_json:
            click.echo(json.dumps([releases.release_json(r) for r in rows], indent=2))
            return
        for r in rows:
            state = "draft" if r.is_draft else ("yanked" if r.is_yanked else "published")
            when = r.published_at.date().isoformat() if r.published_at else "-"
            kind = f"{r.kind}/{r.severity}" if r.severity else r.kind
            plats = ",".join(a.platform for a in r.artifacts)
            click.echo(
                f"{r.version:16} {kind:18} {r.channel:10} {r.line.name:6} {when:10} "
                f"{state:9} rollout {r.rollout_percent:3}%  {plats}"
            )


@command(release, "verify")
@which_release
def release_verify(product: str, version: str) -> None:
    """Check a release's stored bytes against their recorded SHA-256 and its manifest signature."""
    with transaction() as session:
        problems = verify_release(services(), releases.find_release(session, product, version))
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    click.echo(f"{product} {version}: manifest signature and every artifact's SHA-256 verify")


@command(release, "yank")
@which_release
@click.option("--reason", required=True, help="Shown to installations already on the release.")
@click.option("--recommended", "recommended", default=None, help="The version to move to instead.")
def release_yank(product: str, version: str, reason: str, recommended: str | None) -> None:
    """Stop offering a release; installations on it are told why and what to use instead."""
    with transaction() as session:
        r = releases.yank(
            session,
            releases.find_release(session, product, version),
            reason=reason,
            recommended_version=recommended,
            actor=ACTOR,
        )
        click.echo(f"{r.product.slug} {r.version} yanked")


@command(release, "rollout")
@which_release
@click.argument("percent", type=int)
def release_rollout(product: str, version: str, percent: int) -> None:
    """Set the staged rollout PERCENT (0–100; 0 halts it)."""
    with transaction() as session:
        r = releases.set_rollout(
            session, releases.find_release(session, product, version), percent, actor=ACTOR
        )
        state = "halted" if r.rollout_percent == 0 else f"at {r.rollout_percent}%"
        click.echo(f"{r.product.slug} {r.version} rollout {state}")
