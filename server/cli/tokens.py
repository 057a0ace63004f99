"""``vigor token``: bearer tokens for the admin API, e.g. for publishing from CI. The secret is
printed once (only its hash is stored); a token's role bounds what it may do."""

from __future__ import annotations

import click

from server.cli.common import ACTOR, choice_option, command, transaction
from server.domain import api_tokens
from server.domain.vocabulary import Role


@click.group()
def token() -> None:
    """API tokens for CI publishing."""


@command(token, "create")
@click.argument("name")
@choice_option("--role", Role, Role.PUBLISHER)
def token_create(name: str, role: str) -> None:
    """Create a token; it is printed once."""
    with transaction() as session:
        t, secret = api_tokens.create_token(session, name, role=role, actor=ACTOR)
        click.echo(secret)
        click.echo(
            f"token {t.id} ({t.name}, {t.role}); the secret above is not shown again", err=True
        )


@command(token, "revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    with transaction() as session:
        t = api_tokens.revoke_token(session, token_id, actor=ACTOR)
        click.echo(f"token {t.id} ({t.name}) revoked")
