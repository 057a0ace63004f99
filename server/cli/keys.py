"""``vigor keys``: the root of trust and the online keys.

Root keys stay offline and sign each new root version (``create-root``, ``write-root``); online
keys live in the keys directory and sign once a root names them: the ``release`` role's key signs
manifests and patches documents, the ``check`` role's key check answers and bundle statements
(``add-online``, ``rotate-online``, ``separate-roles``). ``export-root`` writes the file agents
ship with.

A root key's passphrase comes from ``--passphrase-env VAR``, ``--passphrase-file PATH``, or, when
neither is given and the terminal is interactive, a prompt; scripts stay non-interactive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from server import bootstrap
from server.cli.common import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE,
    command,
    fail,
    given_passphrase,
    interactive,
    new_key_passphrase,
    now,
    services,
    transaction,
)
from server.domain import roots
from server.domain.roots import ROOT_WARNING_DAYS
from server.domain.trust import Signer, iso
from server.keyring import create_key_file, is_encrypted, load_key_file

F = TypeVar("F", bound=Callable[..., Any])

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
ROOT_PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The passphrase of encrypted root keys is in this file (its first line).",
)


def root_passphrase_options(func: F) -> F:
    """``--passphrase-env`` and ``--passphrase-file`` for commands that read root keys."""
    return ROOT_PASSPHRASE_ENV(ROOT_PASSPHRASE_FILE(func))


@click.group()
def keys() -> None:
    """Root and online signing keys, and root metadata versions."""


@command(keys, "create-root", needs_app=False)
@click.argument("path", type=click.Path(path_type=Path))
@PASSPHRASE_ENV
@PASSPHRASE_FILE
def keys_create_root(path: Path, passphrase_env: str | None, passphrase_file: Path | None) -> None:
    """Create a root key file at PATH (keep it offline)."""
    passphrase = new_key_passphrase(passphrase_env, passphrase_file, "root key")
    signer = create_key_file(path, passphrase)
    state = "encrypted" if passphrase else "NOT encrypted"
    click.echo(f"root key {signer.keyid} written to {path} ({state}); keep it offline")


@command(keys, "add-online")
def keys_add_online() -> None:
    """Create an online key (for the release or check role) in the keys directory; a new root
    must name it (`vigor keys write-root --release-key/--check-key`)."""
    keyring = services().keyring
    signer = keyring.create()
    click.echo(f"online key {signer.keyid} written to {keyring.path_for(signer.keyid)}")


def _load_signers(
    paths: tuple[Path, ...], passphrase_env: str | None, passphrase_file: Path | None
) -> list[Signer]:
    """Root keys; the passphrase opens the encrypted ones, and is asked for when none is given
    and the terminal is interactive."""
    passphrase = given_passphrase(passphrase_env, passphrase_file)
    signers: list[Signer] = []
    for path in paths:
        if not is_encrypted(path):
            signers.append(load_key_file(path))
            continue
        if passphrase is None and interactive():
            passphrase = click.prompt(f"Passphrase of {path}", hide_input=True)
        signers.append(load_key_file(path, passphrase))
    return signers


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
    help="Key id of an online key for the check role (default: the current ones); never a "
    "release key.",
)
@click.option("--threshold", type=click.IntRange(1, 16), default=1, show_default=True)
@click.option("--expires-days", type=click.IntRange(1, 3650), default=365, show_default=True)
@root_passphrase_options
def keys_write_root(
    root_keys: tuple[Path, ...],
    new_root_keys: tuple[Path, ...],
    release_keys: tuple[str, ...],
    check_keys: tuple[str, ...],
    threshold: int,
    expires_days: int,
    passphrase_env: str | None,
    passphrase_file: Path | None,
) -> None:
    """Write the next root version (signed by the current root keys and the new ones)."""
    old = _load_signers(root_keys, passphrase_env, passphrase_file)
    new = _load_signers(new_root_keys, passphrase_env, passphrase_file) if new_root_keys else None
    root = bootstrap.write_root(
        services(),
        old_signers=old,
        new_signers=new,
        release_keys=list(release_keys) or None,
        check_keys=list(check_keys) or None,
        threshold=threshold,
        expires_days=expires_days,
    )
    click.echo(f"root version {root.version} written, expires {iso(root.expires)}")


@command(keys, "rotate-online")
@ROOT_KEYS
@root_passphrase_options
def keys_rotate_online(
    root_keys: tuple[Path, ...], passphrase_env: str | None, passphrase_file: Path | None
) -> None:
    """Replace the online keys: a new release key and a new check key, a new root naming only
    them, manifests and patches documents re-signed."""
    root, resigned = bootstrap.rotate_online_key(
        services(), _load_signers(root_keys, passphrase_env, passphrase_file)
    )
    click.echo(
        f"root version {root.version} names the new online keys; {resigned} manifests re-signed "
        "(and their patches documents)"
    )


@command(keys, "separate-roles")
@ROOT_KEYS
@root_passphrase_options
def keys_separate_roles(
    root_keys: tuple[Path, ...], passphrase_env: str | None, passphrase_file: Path | None
) -> None:
    """Give the check role a key of its own (instances set up with one online key for both).

    Creates a check key and writes root N+1 naming it; the release key and every signed
    manifest stay as they are. Agents walk to root N+1 on their next check.
    """
    root = bootstrap.separate_roles(
        services(), _load_signers(root_keys, passphrase_env, passphrase_file)
    )
    (check,) = root.role("check").keyids
    click.echo(f"root version {root.version} names check key {check}, apart from the release key")


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
    if root.shared_online_keys():
        click.echo(
            "warning: the release and check roles share a key; "
            "run `vigor keys separate-roles --root-key PATH`"
        )
    if root.expires <= now():
        click.echo("warning: this root has expired; agents refuse it: run `vigor keys write-root`")
    elif root.expires <= now() + timedelta(days=ROOT_WARNING_DAYS):
        click.echo(
            "warning: this root expires within "
            f"{ROOT_WARNING_DAYS} days: run `vigor keys write-root` and ship it to the agents"
        )
