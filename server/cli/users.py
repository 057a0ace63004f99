"""``vigor user``: the vendor's own people who sign in to the admin web (admin, publisher,
viewer). Customers' people are portal users: see ``vigor customer user``.

Every change that should end a person's sessions does (a new password, a reset, disable,
remove), and the last active admin can be neither disabled, demoted nor removed.
"""

from __future__ import annotations

import click

from server.cli.common import (
    ACTOR,
    choice_option,
    command,
    from_env,
    now,
    services,
    transaction,
)
from server.domain import users
from server.domain.vocabulary import Role


@click.group()
def user() -> None:
    """Admin users."""


def _new_password(password_env: str | None) -> str:
    """The password from ``--password-env``, else typed twice at a hidden prompt."""
    if password_env:
        return from_env(password_env)
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


_PASSWORD_ENV = click.option(
    "--password-env", default=None, metavar="VAR", help="Read the password from this variable."
)


@command(user, "add")
@click.argument("email")
@choice_option("--role", Role, Role.VIEWER)
@_PASSWORD_ENV
def user_add(email: str, role: str, password_env: str | None) -> None:
    """Create an admin user (prompts for the password unless --password-env is given)."""
    password = _new_password(password_env)
    with transaction() as session:
        u = users.add_user(session, email, password, role=role, actor=ACTOR)
        click.echo(f"user {u.email} ({u.role}) added")


@command(user, "list")
def user_list() -> None:
    """List the admin users with their role and state."""
    with transaction() as session:
        for u in users.list_users(session):
            click.echo(f"{u.email:40} {u.role:9} {u.state}")


@command(user, "password")
@click.argument("email")
@_PASSWORD_ENV
def user_password(email: str, password_env: str | None) -> None:
    """Set a user's password (prompts unless --password-env is given); their sessions end."""
    with transaction() as session:
        u = users.find_user(session, email)
        users.set_password(session, u, _new_password(password_env), actor=ACTOR)
        click.echo(f"password of {u.email} set; their sessions are signed out")


@command(user, "reset")
@click.argument("email")
def user_reset(email: str) -> None:
    """Clear a user's password, end their sessions, print a set-password link (shown once)."""
    with transaction() as session:
        invitation = users.reset_password(
            session,
            users.find_user(session, email),
            secret_key=services().settings.secret_key,
            actor=ACTOR,
            now=now(),
        )
        click.echo(users.set_password_link(services().settings.public_base_url, invitation.token))
        click.echo(
            f"set-password link for {invitation.user.email}, valid once until "
            f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC",
            err=True,
        )


@command(user, "role")
@click.argument("email")
@click.argument("role")  # checked by the domain, which names the roles in its one-line refusal
def user_role(email: str, role: str) -> None:
    """Give a user another ROLE: admin, publisher or viewer."""
    with transaction() as session:
        u = users.set_role(session, users.find_user(session, email), role, actor=ACTOR)
        click.echo(f"user {u.email} is {u.role}")


def _set_disabled(email: str, disabled: bool) -> None:
    with transaction() as session:
        u = users.set_disabled(session, users.find_user(session, email), disabled, actor=ACTOR)
        click.echo(f"user {u.email} {'disabled' if disabled else 'enabled'}")


@command(user, "disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable a user: their sessions end at once and sign-in is refused."""
    _set_disabled(email, True)


@command(user, "enable")
@click.argument("email")
def user_enable(email: str) -> None:
    """Enable a disabled user again (with the password they had)."""
    _set_disabled(email, False)


@command(user, "remove")
@click.argument("email")
def user_remove(email: str) -> None:
    """Remove a user for good (the audit log keeps what they did)."""
    with transaction() as session:
        u = users.find_user(session, email)
        users.remove_user(session, u, actor=ACTOR)
        click.echo(f"user {u.email} removed")
