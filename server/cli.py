"""The ``vigor`` command: a Flask CLI group (``flask --app wsgi …`` reaches the same commands).

Every command prints one clear line on stderr and exits non-zero on failure; ``--verbose`` (or
``VIGOR_VERBOSE=1``) shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from server.config import ConfigError
from server.domain import api_tokens, customers, portal_users, products, releases, roots
from server.domain.errors import DomainError
from server.domain.models import Customer, License, Product, utcnow
from server.domain.trust import TrustError, iso
from server.keyring import KeyFileError, load_key_file
from server.services import Services
from server.storage.base import StorageError

F = TypeVar("F", bound=Callable[..., Any])
ACTOR = "cli:" + os.environ.get("USER", "operator")


class CommandError(click.ClickException):
    """A failure explained in one line."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> CommandError:
    return CommandError(message)


def _verbose() -> bool:
    return os.environ.get("VIGOR_VERBOSE", "") not in {"", "0"}


def explained(func: F) -> F:
    """Turn every expected failure into one line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except DomainError as exc:
            raise fail(exc.message) from exc
        except (KeyFileError, TrustError, ConfigError, StorageError) as exc:
            raise fail(str(exc)) from exc
        except (OperationalError, ProgrammingError) as exc:
            if _verbose():
                traceback.print_exc()
            raise fail(
                f"database error ({type(exc.orig).__name__}): is the database initialised? run `vigor init`"
            ) from exc
        except SQLAlchemyError as exc:
            raise fail(f"database error: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc

    return wrapper  # type: ignore[return-value]


def svc() -> Services:
    services: Services = current_app.extensions["vigor"]
    return services


def session() -> Any:
    return svc().db.sessions()


def _create_app() -> Flask:
    from server.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    create_app=_create_app,
    add_default_commands=True,
    add_version_option=False,
    help="Vigor: self-hosted update and release distribution.",
)


def register(app: Flask) -> None:
    """Attach Vigor's commands to ``app.cli`` (so ``flask --app wsgi`` has them too)."""
    for command in (
        init_cmd,
        serve_cmd,
        demo_cmd,
        keys,
        product,
        release,
        customer,
        contract,
        license_group,
        token,
        gc_cmd,
        user,
        bundle,
        installation,
    ):
        app.cli.add_command(command)


def main() -> None:
    cli.main(prog_name="vigor")


# --------------------------------------------------------------------------- init, serve, demo


@click.command("init")
@click.option(
    "--root-key",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write a new root key (default: KEYS_DIR/root.pem; move it offline).",
)
@click.option(
    "--passphrase-env",
    default=None,
    metavar="VAR",
    help="Encrypt a new root key with the passphrase in this environment variable.",
)
@with_appcontext
@explained
def init_cmd(root_key: Path | None, passphrase_env: str | None) -> None:
    """Create or upgrade the database, and create the root of trust if there is none."""
    from server.bootstrap import ensure_trust

    services = svc()
    services.db.upgrade()
    click.echo(f"database ready: {_safe_url(services.db.url)}")
    made = ensure_trust(services, root_key_path=root_key, passphrase=_passphrase(passphrase_env))
    if made:
        click.echo(f"created root key {made} — keep it offline; it signs every future root")
    click.echo(f"root of trust: version {services.root().version}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _passphrase(env_name: str | None) -> str | None:
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise fail(f"environment variable {env_name} is empty or not set")
    return value


@click.command("serve")
@click.option("--host", default=None, help="Address to bind (default VIGOR_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default VIGOR_PORT or 8000).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@with_appcontext
@explained
def serve_cmd(host: str | None, port: int | None, workers: int) -> None:
    """Serve the app with gunicorn."""
    from server.serving import serve

    settings = svc().settings
    serve(settings, host or settings.host, port or settings.port, workers)


@click.command("demo")
@click.option("--port", type=int, default=None, help="Port (default VIGOR_PORT or 8000).")
@click.option("--no-serve", is_flag=True, help="Only initialise and load the demo data.")
@with_appcontext
@explained
def demo_cmd(port: int | None, no_serve: bool) -> None:
    """Initialise a demo instance (SQLite + local storage), load demo data, and serve it."""
    from server.demo import load_demo
    from server.serving import serve

    services = svc()
    if services.settings.production:
        raise fail("the demo refuses to run with VIGOR_PRODUCTION set")
    report = load_demo(services)
    settings = services.settings
    port = port or settings.port
    base = f"http://{settings.host}:{port}"
    if "VIGOR_PUBLIC_URL" not in os.environ:
        settings = settings.with_(public_base_url=base)  # download links must reach this server
    click.echo(report.describe(base))
    if not no_serve:
        click.echo(f"serving on {base} (Ctrl-C to stop)")
        serve(settings, settings.host, port, workers=2)


# --------------------------------------------------------------------------- keys


@click.group()
def keys() -> None:
    """Root and online signing keys, and root metadata versions."""


@keys.command("create-root")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--passphrase-env",
    default=None,
    metavar="VAR",
    help="Encrypt the key with the passphrase in this environment variable.",
)
@explained
def keys_create_root(path: Path, passphrase_env: str | None) -> None:
    """Create a root key file at PATH (keep it offline)."""
    from server.keyring import create_key_file

    signer = create_key_file(path, _passphrase(passphrase_env))
    click.echo(f"root key {signer.keyid} written to {path}")


@keys.command("add-online")
@with_appcontext
@explained
def keys_add_online() -> None:
    """Create an online key (release/check role) in the keys directory; a new root must name it."""
    signer = svc().keyring.create()
    click.echo(f"online key {signer.keyid} written to {svc().keyring.path_for(signer.keyid)}")


def _load_signers(paths: tuple[Path, ...], passphrase_env: str | None) -> list[Any]:
    passphrase = os.environ.get(passphrase_env) if passphrase_env else None
    return [load_key_file(p, passphrase) for p in paths]


@keys.command("write-root")
@click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A key of the current root role (repeat to meet its threshold).",
)
@click.option(
    "--new-root-key",
    "new_root_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Keys of the next root role (rotating root keys); default: keep the current ones.",
)
@click.option(
    "--release-key",
    "release_keys",
    multiple=True,
    help="Key id of an online key for the release role (default: the current ones).",
)
@click.option(
    "--check-key",
    "check_keys",
    multiple=True,
    help="Key id of an online key for the check role (default: same as release).",
)
@click.option("--threshold", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--expires-days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--passphrase-env", default=None, metavar="VAR")
@with_appcontext
@explained
def keys_write_root(
    root_keys: tuple[Path, ...],
    new_root_keys: tuple[Path, ...],
    release_keys: tuple[str, ...],
    check_keys: tuple[str, ...],
    threshold: int,
    expires_days: int,
    passphrase_env: str | None,
) -> None:
    """Write the next root version (signed by the current root keys and the new ones)."""
    from server.bootstrap import write_root

    root = write_root(
        svc(),
        old_signers=_load_signers(root_keys, passphrase_env),
        new_signers=_load_signers(new_root_keys, passphrase_env) if new_root_keys else None,
        release_keys=list(release_keys) or None,
        check_keys=list(check_keys) or None,
        threshold=threshold,
        expires_days=expires_days,
    )
    click.echo(f"root version {root.version} written, expires {iso(root.expires)}")


@keys.command("rotate-online")
@click.option(
    "--root-key", "root_keys", multiple=True, required=True, type=click.Path(path_type=Path)
)
@click.option("--passphrase-env", default=None, metavar="VAR")
@with_appcontext
@explained
def keys_rotate_online(root_keys: tuple[Path, ...], passphrase_env: str | None) -> None:
    """Replace the online key: new key, new root naming only it, manifests re-signed."""
    from server.bootstrap import rotate_online_key

    root, resigned = rotate_online_key(svc(), _load_signers(root_keys, passphrase_env))
    click.echo(
        f"root version {root.version} names the new online key; {resigned} manifests re-signed"
    )


@keys.command("export-root")
@click.option("--version", "version", type=int, default=None, help="Default: the newest.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default: stdout.")
@with_appcontext
@explained
def keys_export_root(version: int | None, out: Path | None) -> None:
    """Write root metadata (the file agents ship with and pin)."""
    with session() as s:
        document = roots.root_document(s, version)
    if document is None:
        raise fail(f"no root version {version}" if version else "no root yet: run `vigor init`")
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"root version {document['signed']['version']} written to {out}", err=True)


@keys.command("status")
@with_appcontext
@explained
def keys_status() -> None:
    """Show the newest root, its roles, and which online keys are present."""
    root = svc().root()
    present = set(svc().keyring.available())
    click.echo(f"root version {root.version}, expires {iso(root.expires)}")
    for name, role in sorted(root.roles.items()):
        for kid in role.keyids:
            mark = " (online key present)" if kid in present else ""
            click.echo(f"  {name:8} {kid}{mark}")
        click.echo(f"  {name:8} threshold {role.threshold}")


# --------------------------------------------------------------------------- products


@click.group()
def product() -> None:
    """Products and their lines."""


@product.command("add")
@click.argument("slug")
@click.option("--name", default="", help="Display name (default: the slug).")
@click.option(
    "--lapse-policy",
    type=click.Choice(["fallback", "revoke"]),
    default="fallback",
    show_default=True,
)
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
@with_appcontext
@explained
def product_add(
    slug: str,
    name: str,
    lapse_policy: str,
    security_carveout_months: int,
    grace_days: int,
    timezone: str,
    renewal_url: str | None,
) -> None:
    """Add a product."""
    with session() as s:
        p = products.add_product(
            s,
            slug,
            name,
            actor=ACTOR,
            lapse_policy=lapse_policy,
            security_carveout_months=security_carveout_months,
            grace_days=grace_days,
            timezone=timezone,
            renewal_url=renewal_url,
        )
        click.echo(f"product {p.slug} added")


@product.command("list")
@with_appcontext
@explained
def product_list() -> None:
    """List products and their lines."""
    with session() as s:
        for p in s.scalars(select(Product).order_by(Product.slug)):
            lines = (
                ", ".join(f"{line.name} ({line.status})" for line in p.lines) or "no releases yet"
            )
            click.echo(f"{p.slug:20} {p.name} — {lines}")


@product.command("line")
@click.argument("slug")
@click.argument("line")
@click.argument("status", type=click.Choice(["supported", "security-only", "end-of-life"]))
@with_appcontext
@explained
def product_line(slug: str, line: str, status: str) -> None:
    """Set a product line's lifecycle status."""
    with session() as s:
        products.set_line_status(s, products.get_product(s, slug), line, status, actor=ACTOR)
        click.echo(f"{slug} {line} is now {status}")


# --------------------------------------------------------------------------- releases


def _parse_files(values: tuple[str, ...]) -> list[releases.PathArtifact]:
    out = []
    for value in values:
        platform, sep, path = value.partition("=")
        if not sep or not platform or not path:
            raise fail(f"--file takes PLATFORM=PATH, not {value!r}")
        p = Path(path)
        if not p.is_file():
            raise fail(f"no such file: {path}")
        out.append(releases.PathArtifact(platform=platform, path=p))
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


@release.command("publish")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@click.option("--kind", type=click.Choice(["update", "security", "version"]), required=True)
@click.option("--severity", type=click.Choice(["critical", "serious", "minor"]), default=None)
@click.option("--channel", default="stable", show_default=True)
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
@with_appcontext
@explained
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
    spec = releases.ReleaseSpec(
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
    signer = None if draft else svc().signer("release")
    with session() as s:
        r = releases.publish(
            s,
            svc().store,
            signer,
            spec,
            incoming,
            actor=ACTOR,
            max_size=svc().settings.max_upload_bytes,
        )
        state = "saved as a draft" if draft else "published"
        click.echo(f"{r.product.slug} {r.version} {state}")
        for a in r.artifacts:
            click.echo(f"  {a.platform:16} {a.size:>12} bytes  sha256 {a.sha256}")
        release_id = r.id
    if not draft:
        _patches(release_id)


def _patches(release_id: int) -> None:
    """The release is visible already; patches to it are made now, after the fact."""
    try:
        made = svc().make_patches(release_id)
    except (StorageError, OSError, ValueError) as exc:
        click.echo(
            f"warning: patches were not made ({exc}); run `vigor release patches` later", err=True
        )
        return
    click.echo(f"  {made} delta patch(es) from earlier releases")


@release.command("patches")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@with_appcontext
@explained
def release_patches(product: str, version: str) -> None:
    """Make the missing delta patches to a release (from the previous releases on each platform)."""
    with session() as s:
        release_id = releases.find_release(s, product, version).id
    _patches(release_id)


@release.command("publish-draft")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@with_appcontext
@explained
def release_publish_draft(product: str, version: str) -> None:
    """Publish a release saved as a draft."""
    with session() as s:
        r = releases.publish_draft(
            s, releases.find_release(s, product, version), svc().signer("release"), ACTOR
        )
        click.echo(f"{r.product.slug} {r.version} published")


@release.command("list")
@click.option("--product", required=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
@explained
def release_list(product: str, as_json: bool) -> None:
    """List a product's releases, oldest first."""
    with session() as s:
        rows = releases.list_releases(s, product)
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


@release.command("verify")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@with_appcontext
@explained
def release_verify(product: str, version: str) -> None:
    """Check a release's stored bytes against their recorded SHA-256 and its manifest signature."""
    from server.bootstrap import verify_release

    with session() as s:
        problems = verify_release(svc(), releases.find_release(s, product, version))
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    click.echo(f"{product} {version}: manifest signature and every artifact's SHA-256 verify")


@release.command("yank")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@click.option("--reason", required=True, help="Shown to installations already on the release.")
@click.option("--recommended", "recommended", default=None, help="The version to move to instead.")
@with_appcontext
@explained
def release_yank(product: str, version: str, reason: str, recommended: str | None) -> None:
    """Stop offering a release; installations on it are told why and what to use instead."""
    with session() as s:
        r = releases.yank(
            s,
            releases.find_release(s, product, version),
            reason=reason,
            recommended_version=recommended,
            actor=ACTOR,
        )
        click.echo(f"{r.product.slug} {r.version} yanked")


@release.command("rollout")
@click.option("--product", required=True)
@click.option("--version", "version", required=True)
@click.argument("percent", type=int)
@with_appcontext
@explained
def release_rollout(product: str, version: str, percent: int) -> None:
    """Set the staged rollout PERCENT (0–100; 0 halts it)."""
    with session() as s:
        r = releases.set_rollout(
            s, releases.find_release(s, product, version), percent, actor=ACTOR
        )
        state = "halted" if r.rollout_percent == 0 else f"at {r.rollout_percent}%"
        click.echo(f"{r.product.slug} {r.version} rollout {state}")


# --------------------------------------------------------------------------- customers


@click.group()
def customer() -> None:
    """Customers."""


@customer.command("add")
@click.argument("slug")
@click.option("--name", default="")
@click.option("--email", default=None)
@click.option(
    "--language",
    type=click.Choice(["en", "es"]),
    default=None,
    help="Portal and check messages; default: each reader's browser or agent language.",
)
@with_appcontext
@explained
def customer_add(slug: str, name: str, email: str | None, language: str | None) -> None:
    """Add a customer."""
    with session() as s:
        c = customers.add_customer(s, slug, name, actor=ACTOR, email=email, language=language or "")
        click.echo(f"customer {c.slug} added")


@customer.command("list")
@with_appcontext
@explained
def customer_list() -> None:
    """List customers with their contracts and licenses."""
    with session() as s:
        for c in s.scalars(select(Customer).order_by(Customer.slug)):
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


def _print_link(invitation: portal_users.Invitation) -> None:
    click.echo(portal_users.set_password_link(svc().settings.public_base_url, invitation.token))
    click.echo(
        f"set-password link for {invitation.user.email}, valid once until "
        f"{iso(invitation.expires_at)}; it is not shown again",
        err=True,
    )


@customer_user.command("add")
@click.argument("customer_slug")
@click.argument("email")
@with_appcontext
@explained
def customer_user_add(customer_slug: str, email: str) -> None:
    """Add a portal user to a customer; prints their set-password link (shown once)."""
    with session() as s:
        invitation = portal_users.invite(
            s,
            customers.get_customer(s, customer_slug),
            email,
            secret_key=svc().settings.secret_key,
            actor=ACTOR,
            now=utcnow(),
        )
        _print_link(invitation)


@customer_user.command("link")
@click.argument("email")
@with_appcontext
@explained
def customer_user_link(email: str) -> None:
    """Reset a portal user: clear the password, end their sessions, print a new link."""
    with session() as s:
        invitation = portal_users.reset(
            s,
            portal_users.find_user(s, email),
            secret_key=svc().settings.secret_key,
            actor=ACTOR,
            now=utcnow(),
        )
        _print_link(invitation)


@customer_user.command("list")
@click.argument("customer_slug")
@with_appcontext
@explained
def customer_user_list(customer_slug: str) -> None:
    """List a customer's portal users."""
    with session() as s:
        for u in customers.get_customer(s, customer_slug).portal_users:
            state = "disabled" if u.disabled else ("active" if u.password_hash else "invited")
            last = iso(u.last_login_at) if u.last_login_at else "never signed in"
            click.echo(f"{u.email:40} {state:9} {last}")


@customer_user.command("disable")
@click.argument("email")
@with_appcontext
@explained
def customer_user_disable(email: str) -> None:
    """Disable a portal user: their sessions end at once and their links stop working."""
    with session() as s:
        u = portal_users.set_disabled(s, portal_users.find_user(s, email), True, actor=ACTOR)
        click.echo(f"portal user {u.email} disabled")


@customer_user.command("enable")
@click.argument("email")
@with_appcontext
@explained
def customer_user_enable(email: str) -> None:
    """Enable a disabled portal user again (with the password they had)."""
    with session() as s:
        u = portal_users.set_disabled(s, portal_users.find_user(s, email), False, actor=ACTOR)
        click.echo(f"portal user {u.email} enabled")


@click.group()
def contract() -> None:
    """Maintenance and customization contracts."""


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


@contract.command("add")
@click.option("--customer", "customer_slug", required=True)
@click.option(
    "--kind",
    type=click.Choice(["maintenance", "customization"]),
    default="maintenance",
    show_default=True,
)
@click.option("--product", "product_slug", default=None, help="Default: all products.")
@click.option("--from", "starts", required=True, metavar="YYYY-MM-DD")
@click.option(
    "--to", "ends", required=True, metavar="YYYY-MM-DD", help="Last covered day (inclusive)."
)
@with_appcontext
@explained
def contract_add(
    customer_slug: str, kind: str, product_slug: str | None, starts: str, ends: str
) -> None:
    """Record a contract covering whole days from FROM to TO inclusive."""
    with session() as s:
        c = customers.get_customer(s, customer_slug)
        p = products.get_product(s, product_slug) if product_slug else None
        k = customers.add_contract(
            s, c, kind, _date(starts, "--from"), _date(ends, "--to"), actor=ACTOR, product=p
        )
        click.echo(f"{k.kind} contract {k.id} for {c.slug}: {k.starts_on} to {k.ends_on}")


@click.group("license")
def license_group() -> None:
    """Licenses: issue (key shown once), suspend, revoke, list."""


@license_group.command("issue")
@click.option("--customer", "customer_slug", required=True)
@click.option("--product", "product_slug", required=True)
@click.option("--max-installations", type=click.IntRange(1), default=None)
@click.option("--label", default="")
@with_appcontext
@explained
def license_issue(
    customer_slug: str, product_slug: str, max_installations: int | None, label: str
) -> None:
    """Issue a license. The key is printed once; only its hash is stored."""
    with session() as s:
        lic, key = customers.issue_license(
            s,
            customers.get_customer(s, customer_slug),
            products.get_product(s, product_slug),
            actor=ACTOR,
            label=label,
            max_installations=max_installations,
        )
        click.echo(key)
        click.echo(
            f"license {lic.id} for {customer_slug}/{product_slug}; the key above is not shown again",
            err=True,
        )


def _set_status(key: str, status: str) -> None:
    with session() as s:
        lic = customers.set_license_status(s, customers.find_license(s, key), status, actor=ACTOR)
        click.echo(f"license {lic.id} ({lic.key_prefix}…) is {lic.status}")


@license_group.command("suspend")
@click.argument("key")
@with_appcontext
@explained
def license_suspend(key: str) -> None:
    """Suspend a license (KEY: the key, its listed prefix, or its id)."""
    _set_status(key, "suspended")


@license_group.command("reactivate")
@click.argument("key")
@with_appcontext
@explained
def license_reactivate(key: str) -> None:
    """Lift a suspension."""
    _set_status(key, "active")


@license_group.command("revoke")
@click.argument("key")
@with_appcontext
@explained
def license_revoke(key: str) -> None:
    """Revoke a license for good."""
    _set_status(key, "revoked")


@license_group.command("list")
@with_appcontext
@explained
def license_list() -> None:
    """List licenses (prefixes only; keys are never stored)."""
    with session() as s:
        for lic in s.scalars(select(License).order_by(License.id)):
            cap = lic.max_installations or "-"
            used = customers.installation_count(s, lic)
            click.echo(
                f"{lic.id:5} {lic.key_prefix}…  {lic.customer.slug:16} {lic.product.slug:14} "
                f"{lic.status:10} installations {used}/{cap}"
            )


# --------------------------------------------------------------------------- tokens, users, gc


@click.group()
def token() -> None:
    """API tokens for CI publishing."""


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["publisher", "admin", "viewer"]),
    default="publisher",
    show_default=True,
)
@with_appcontext
@explained
def token_create(name: str, role: str) -> None:
    """Create a token; it is printed once."""
    with session() as s:
        t, secret = api_tokens.create_token(s, name, role=role, actor=ACTOR)
        click.echo(secret)
        click.echo(
            f"token {t.id} ({t.name}, {t.role}); the secret above is not shown again", err=True
        )


@token.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
@explained
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    with session() as s:
        t = api_tokens.revoke_token(s, token_id, actor=ACTOR)
        click.echo(f"token {t.id} ({t.name}) revoked")


@click.group()
def user() -> None:
    """Admin users."""


@user.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["admin", "publisher", "viewer"]),
    default="viewer",
    show_default=True,
)
@click.option(
    "--password-env", default=None, metavar="VAR", help="Read the password from this variable."
)
@with_appcontext
@explained
def user_add(email: str, role: str, password_env: str | None) -> None:
    """Create an admin user (prompts for the password unless --password-env is given)."""
    from server.domain import users

    password = (
        _passphrase(password_env)
        if password_env
        else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    ) or ""
    with session() as s:
        u = users.add_user(s, email, password, role=role, actor=ACTOR)
        click.echo(f"user {u.email} ({u.role}) added")


@click.group()
def bundle() -> None:
    """Offline bundles for machines without internet."""


@bundle.command("export")
@click.option(
    "--license", "license_key", required=True, help="The license key (or its listed prefix or id)."
)
@click.option("--since", default=None, help="Only releases newer than this installed version.")
@click.option("--platform", "platform", default="linux-x86_64", show_default=True)
@click.option("--channel", default="stable", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@with_appcontext
@explained
def bundle_export(
    license_key: str, since: str | None, platform: str, channel: str, out: Path
) -> None:
    """Write everything a license may install, verifiable offline, to one file."""
    from server.domain import bundles

    services = svc()
    with session() as s:
        lic = customers.find_license(s, license_key)
        catalog = services.catalogs.get(
            s, lic.product_id, lic.product.catalog_revision, services.settings.renewal_url
        )
        plan = bundles.plan_bundle(
            lic,
            catalog,
            since=releases.parse_version(since, "--since") if since else None,
            platform=platform,
            channel=channel,
            now=utcnow(),
        )
        size = bundles.write_bundle(s, services.store, services.signer("check"), plan, out)
        versions = ", ".join(sorted(plan.manifests, key=releases.parse_version)) or "none"
        click.echo(
            f"{out}: {size} bytes; releases: {versions}; maintenance "
            f"{plan.statement['entitlement']['status']}"
        )


@click.group()
def installation() -> None:
    """Installations."""


@installation.command("import")
@click.argument("status_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@with_appcontext
@explained
def installation_import(status_file: Path) -> None:
    """Import a status file an offline installation wrote (`vigor-agent status --export`)."""
    from server.domain import status_files

    try:
        document = json.loads(status_file.read_text())
    except ValueError:
        raise fail(f"{status_file} is not JSON") from None
    with session() as s:
        result = status_files.import_status(s, document, actor=ACTOR)
    seen = "new installation" if result.first_seen else "installation"
    click.echo(
        f"{seen} {result.installation_id}: version {result.installed_version}, "
        f"{result.reports} report(s) recorded"
    )


@click.command("gc")
@click.option("--dry-run", is_flag=True)
@with_appcontext
@explained
def gc_cmd(dry_run: bool) -> None:
    """Delete stored blobs that no artifact references (run when no publish is in progress)."""
    with session() as s:
        orphans = releases.garbage_collect(s, svc().store, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(orphans)} unreferenced blob(s)")


if __name__ == "__main__":
    main()
