"""The ``vigor`` command: a Flask CLI group with every Vigor command.

Each module of this package holds the commands of one subject; :mod:`server.cli.common` holds
what they all share (the services, a transaction, the actor, the clock, and failures told in one
line on stderr with exit status 1, the traceback too with ``--verbose`` or ``VIGOR_VERBOSE=1``).

The commands are registered here, not by the app factory: the ``vigor`` console script
(:func:`main`) and ``python -m server.cli`` build this group, and ``flask --app wsgi …`` finds
the same commands through the ``flask.commands`` entry points in ``pyproject.toml``.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from server.app import create_app
from server.cli import (
    bundles,
    customers,
    imports,
    installations,
    jobs,
    keys,
    licenses,
    operations,
    products,
    releases,
    tokens,
    users,
    webhooks,
)
from server.cli.common import set_verbose
from server.config import ConfigError

COMMANDS: tuple[click.Command, ...] = (
    operations.init_cmd,
    operations.serve_cmd,
    operations.demo_cmd,
    keys.keys,
    products.product,
    releases.release,
    customers.customer,
    customers.contract,
    licenses.license_group,
    tokens.token,
    operations.gc_cmd,
    users.user,
    bundles.bundle,
    installations.installation,
    imports.import_group,
    jobs.worker_cmd,
    jobs.jobs_group,
    webhooks.webhook,
)


def _create_app() -> Flask:
    try:
        return create_app(serving=False)  # `vigor serve` checks the secret itself
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


cli = FlaskGroup(
    create_app=_create_app,
    add_default_commands=True,
    add_version_option=False,
    help="Vigor: self-hosted update and release distribution.",
    params=[
        click.Option(
            ["--verbose"],
            is_flag=True,
            expose_value=False,
            callback=set_verbose,
            help="Show the traceback of a failure too (as VIGOR_VERBOSE=1 does).",
        )
    ],
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """The ``vigor`` console script."""
    cli.main(prog_name="vigor")
