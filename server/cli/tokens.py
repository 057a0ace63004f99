"""``vigor token``: bearer tokens for the admin API (CI publishing, a billing system, a CRM).
The secret is printed once (only its hash is stored); a token's scopes bound what it may do,
and it may expire (docs/admin-api.md)."""

from __future__ import annotations

import click

from server.cli.common import ACTOR, choice_option, command, transaction
from server.domain import api_tokens
from server.domain.models import utcnow
from server.domain.vocabulary import Role, Scope, values


@click.group()
def token() -> None:
    """API tokens for the admin API."""


@command(token, "create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(values(Scope)),
    help="What the token may do (repeat for several; `read` is every :read scope).",
)
@choice_option("--role", Role, None, help="Instead of scopes: what a role may (before scopes).")
@click.option(
    "--expires-in",
    default="",
    metavar="DURATION",
    help="Expire after e.g. 90d, 12h, 8w or 1y (default: never).",
)
def token_create(name: str, scopes: tuple[str, ...], role: str | None, expires_in: str) -> None:
    """Create a token; it is printed once. Without --scope or --role: a publisher token (CI)."""
    if scopes and role:
        raise click.UsageError("give --scope or --role, not both")
    with transaction() as session:
        t, secret = api_tokens.create_token(
            session,
            name,
            role=role,
            scopes=scopes or None,
            expires_in=api_tokens.parse_lifetime(expires_in),
            actor=ACTOR,
        )
        click.echo(secret)
        expiry = f", expires {t.expires_at.isoformat()}" if t.expires_at else ""
        click.echo(
            f"token {t.id} ({t.name}: {' '.join(api_tokens.scope_names(t))}{expiry}); "
            "the secret above is not shown again",
            err=True,
        )


@command(token, "list")
def token_list() -> None:
    """Every token: id, name, scopes, expiry, state."""
    with transaction() as session:
        for t in api_tokens.list_tokens(session):
            state = "revoked" if t.revoked_at else ("live" if t.is_live(utcnow()) else "expired")
            expiry = t.expires_at.isoformat() if t.expires_at else "never"
            click.echo(
                f"{t.id}\t{t.name}\t{t.token_prefix}…\t{','.join(api_tokens.scope_names(t))}"
                f"\texpires {expiry}\t{state}"
            )


@command(token, "revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    with transaction() as session:
        t = api_tokens.revoke_token(session, token_id, actor=ACTOR)
        click.echo(f"token {t.id} ({t.name}) revoked")
