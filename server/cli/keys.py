"""``vigor keys``: the root of trust and the online keys.

Root keys stay offline and sign each new root version (``create-root``, ``write-root``); online
keys live in the keys directory and sign manifests and check answers once a root names them
(``add-online``, ``rotate-online``). ``export-root`` writes the file agents ship with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from server import bootstrap
from server.cli.common import command, fail, from_env, services, transaction
from server.domain import roots
from server.domain.trust import Signer, iso
from server.keyring import create_key_file, load_key_file

PASSPHRASE_ENV = click.option(
    "--passphrase-env",
    default=None,
    metavar="VAR",
    help="Encrypt the key with the passphrase in this environment variable.",
)
ROOT_KEYS = click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A key of the current root role (repeat to meet its threshold).",
)
ROOT_PASSPHRASE_ENV = click.option(
    "--passphrase-env",
    default=None,
    metavar="VAR",
    help="The passphrase of encrypted root keys is in this environment variable.",
)


@click.group()
def keys() -> None:
    """Root and online signing keys, and root metadata versions."""


@command(keys, "create-root", needs_app=False)
@click.argument("path", type=click.Path(path_type=Path))
@PASSPHRASE_ENV
def keys_create_root(path: Path, passphrase_env: str | None) -> None:
    """Create a root key file at PATH (keep it offline)."""
    signer = create_key_file(path, from_env(passphrase_env) if passphrase_env else None)
    click.echo(f"root key {signer.keyid} written to {path}")


@command(keys, "add-online")
def keys_add_online() -> None:
    """Create an online key (release/check role) in the keys directory; a new root must name it."""
    keyring = services().keyring
    signer = keyring.create()
    click.echo(f"online key {signer.keyid} written to {keyring.path_for(signer.keyid)}")


def _load_signers(paths: tuple[Path, ...], passphrase_env: str | None) -> list[Signer]:
    passphrase = os.environ.get(passphrase_env) if passphrase_env else None
    return [load_key_file(p, passphrase) for p in paths]


@command(keys, "write-root")
@ROOT_KEYS
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
@ROOT_PASSPHRASE_ENV
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
    root = bootstrap.write_root(
        services(),
        old_signers=_load_signers(root_keys, passphrase_env),
        new_signers=_load_signers(new_root_keys, passphrase_env) if new_root_keys else None,
        release_keys=list(release_keys) or None,
        check_keys=list(check_keys) or None,
        threshold=threshold,
        expires_days=expires_days,
    )
    click.echo(f"root version {root.version} written, expires {iso(root.expires)}")


@command(keys, "rotate-online")
@ROOT_KEYS
@ROOT_PASSPHRASE_ENV
def keys_rotate_online(root_keys: tuple[Path, ...], passphrase_env: str | None) -> None:
    """Replace the online key: new key, new root naming only it, manifests re-signed."""
    root, resigned = bootstrap.rotate_online_key(
        services(), _load_signers(root_keys, passphrase_env)
    )
    click.echo(
        f"root version {root.version} names the new online key; {resigned} manifests re-signed"
    )


@command(keys, "export-root")
@click.option("--version", "version", type=int, default=None, help="Default: the newest.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default: stdout.")
def keys_export_root(version: int | None, out: Path | None) -> None:
    """Write root metadata (the file agents ship with and pin)."""
    with transaction() as session:
        document = roots.root_document(session, version)
    if document is None:
        raise fail(f"no root version {version}" if version else "no root yet: run `vigor init`")
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"root version {document['signed']['version']} written to {out}", err=True)


@command(keys, "status")
def keys_status() -> None:
    """Show the newest root, its roles, and which online keys are present."""
    root = services().root()
    present = set(services().keyring.available())
    click.echo(f"root version {root.version}, expires {iso(root.expires)}")
    for name, role in sorted(root.roles.items()):
        for kid in role.keyids:
            mark = " (online key present)" if kid in present else ""
            click.echo(f"  {name:8} {kid}{mark}")
        click.echo(f"  {name:8} threshold {role.threshold}")
