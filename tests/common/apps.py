"""Apps for tests: initialised, and always disposed (a leaked pool surfaces later as a warning)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from server.app import create_app
from server.bootstrap import ensure_trust
from server.config import Settings
from server.services import Services


@contextmanager
def vigor_app(settings: Settings) -> Iterator[Flask]:
    """An app on ``settings`` with its database migrated and a root of trust."""
    app = create_app(settings)
    services: Services = app.extensions["vigor"]
    try:
        services.db.upgrade()
        ensure_trust(services)
        yield app
    finally:
        services.close()
