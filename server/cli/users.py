"""``vigor user``: the vendor's own people who sign in to the admin web (admin, publisher,
viewer). Customers' people are portal users: see ``vigor customer user``."""

from __future__ import annotations

import click

from server.cli.common import ACTOR, choice_option, command, from_env, transaction
from server.domain import users
from server.domain.vocabulary import Role


@click.group()
def user() -> None:
    """Admin users."""


@command(user, "add")
@click.argument("email")
@choice_option("--role", Role, Role.VIEWER)
@click.option(
    "--password-env", default=None, metavar="VAR", help="Read the password from this variable."
)
def user_add(email: str, role: str, password_env: str | None) -> None:
    """Create an admin user (prompts for the password unless --password-env is given)."""
    password = (
        from_env(password_env)
        if password_env
        else click.prompt("Password", hide_input=True, confirmation_prompt=True)
    ) or ""
    with transaction() as session:
        u = users.add_user(session, email, password, role=role, actor=ACTOR)
        click.echo(f"user {u.email} ({u.role}) added")
