"""What every ``vigor`` command shares: the services, one transaction, the actor, the clock, and
how a failure is told.

A command is declared with :func:`command` instead of ``group.command``: it then runs inside the
app context (the :class:`~server.services.Services` the app factory built) and its expected
failures are :func:`explained` — a domain refusal, an unreadable key, a storage or database
problem becomes one line ``error: …`` on stderr and exit status 1. ``vigor --verbose`` (or
``VIGOR_VERBOSE=1``) prints the traceback before that line.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session

from server.config import ConfigError
from server.db import SchemaError
from server.domain.errors import DomainError
from server.domain.models import utcnow
from server.domain.trust import TrustError
from server.domain.vocabulary import values
from server.keyring import KeyFileError
from server.services import Services
from server.storage.base import StorageError

F = TypeVar("F", bound=Callable[..., Any])

ACTOR = "cli:" + os.environ.get("USER", "operator")
"""Who the audit log says acted: the operator's login name."""

_VERBOSE = "vigor.verbose"  # the key in click's context meta, set by ``vigor --verbose``


class CommandError(click.ClickException):
    """A failure explained in one line."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str) -> CommandError:
    """The error for a failure the operator can act on: ``raise fail("…")``."""
    return CommandError(message)


def set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """The callback of ``vigor --verbose``."""
    if value:
        ctx.meta[_VERBOSE] = True


def verbose() -> bool:
    """True when failures should show their traceback (``--verbose`` or ``VIGOR_VERBOSE``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_VERBOSE):
        return True
    return os.environ.get("VIGOR_VERBOSE", "") not in {"", "0"}


def explained(func: F) -> F:
    """Turn every expected failure into one line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (
            DomainError,
            KeyFileError,
            TrustError,
            ConfigError,
            StorageError,
            SchemaError,
            SQLAlchemyError,
            OSError,
        ) as exc:
            if verbose():
                traceback.print_exc()
            raise fail(_one_line(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _one_line(exc: Exception) -> str:
    """What the operator is told, in the order the kinds of failure are tried."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, KeyFileError | TrustError | ConfigError | StorageError | SchemaError):
        return str(exc)
    if isinstance(exc, OperationalError | ProgrammingError):
        return (
            f"database error ({type(exc.orig).__name__}): is the database initialised? "
            "run `vigor init`"
        )
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return str(exc)


def command(
    parent: click.Group | None, name: str, *, needs_app: bool = True, **attrs: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """Declare a command on ``parent`` (a top-level command when ``None``).

    Its failures are :func:`explained`; it runs in the app context unless ``needs_app`` is false
    (a command that must work before Vigor is configured, such as creating a root key).
    """

    def decorate(func: Callable[..., Any]) -> click.Command:
        func = explained(func)
        if needs_app:
            func = with_appcontext(func)
        declare = click.command if parent is None else parent.command
        return declare(name, **attrs)(func)

    return decorate


def choice_option(
    name: str, vocabulary: type[StrEnum], default: StrEnum | None = None, **attrs: Any
) -> Callable[[F], F]:
    """An option that takes one value of a closed set, typed as the vocabulary spells it."""
    return click.option(
        name,
        type=click.Choice(values(vocabulary)),
        default=None if default is None else default.value,
        show_default=default is not None,
        **attrs,
    )


def services() -> Services:
    """The long-lived services of the app this command runs in."""
    vigor: Services = current_app.extensions["vigor"]
    return vigor


def transaction() -> AbstractContextManager[Session]:
    """A database session that commits when its block ends and rolls back if it raises."""
    return services().db.session()


def now() -> datetime:
    """The clock commands read: the current time in UTC."""
    return utcnow()


def from_env(variable: str) -> str:
    """The value of environment ``variable`` (a passphrase, a password), which must be set."""
    value = os.environ.get(variable)
    if not value:
        raise fail(f"environment variable {variable} is empty or not set")
    return value


PASSPHRASE_ENV = click.option(
    "--passphrase-env",
    default=None,
    metavar="VAR",
    help="Encrypt the key with the passphrase in this environment variable.",
)
PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Encrypt the key with the passphrase in this file (its first line).",
)


def given_passphrase(env: str | None, file: Path | None) -> str | None:
    """The passphrase named by ``--passphrase-env`` or ``--passphrase-file``, if either."""
    if env and file:
        raise fail("give --passphrase-env or --passphrase-file, not both")
    if env:
        return from_env(env)
    if file:
        try:
            lines = file.read_text().splitlines()
        except OSError as exc:
            raise fail(f"cannot read the passphrase file {file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise fail(f"the passphrase file {file} is not text") from None
        if not lines or not lines[0]:
            raise fail(f"the passphrase file {file} is empty")
        return lines[0]
    return None


def interactive() -> bool:
    """Whether a person is at the terminal to answer a prompt."""
    return sys.stdin.isatty()


def new_key_passphrase(env: str | None, file: Path | None, what: str) -> str | None:
    """The passphrase for a new key: given, or asked for when interactive (empty: none)."""
    passphrase = given_passphrase(env, file)
    if passphrase is None and interactive():
        passphrase = click.prompt(
            f"Passphrase to encrypt the {what} (empty: leave it unencrypted)",
            default="",
            show_default=False,
            hide_input=True,
            confirmation_prompt=True,
        )
    return passphrase or None
