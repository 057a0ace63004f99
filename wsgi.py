"""The WSGI entry point (``gunicorn wsgi:app``), also what ``flask --app wsgi …`` loads.

Served, the app refuses to start without the instance's own secret (one line, not a
traceback). Loaded by the ``flask`` command, it is built as the ``vigor`` command builds its own
(``serving=False``), so that ``flask --app wsgi init`` can write that secret first; the
commands that sign anything check the secret themselves.
"""

import click

from server.app import create_app
from server.config import ConfigError

try:
    app = create_app(serving=click.get_current_context(silent=True) is None)
except ConfigError as exc:  # no usable secret, a bad setting: one line, not a traceback
    raise SystemExit(f"error: {exc}") from None
