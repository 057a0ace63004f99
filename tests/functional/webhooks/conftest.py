"""Fixtures of the webhook tests: an app whose webhooks may reach loopback (where the test's
receiver listens) with short retry delays, the receiver, and the worker run in this process."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.config import Settings
from server.domain import api_tokens, users
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.webhook_receiver import WebhookReceiver

PASSWORD = "correct horse battery"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    # The receiver listens on loopback, which production refuses (docs/webhooks.md).
    return settings.with_(
        webhook_allow_private=True,
        webhook_retry_seconds=1,
        webhook_max_attempts=6,
        webhook_disable_after_failures=10,
        webhook_disable_after_hours=0,
    )


@pytest.fixture
def hook_app(hook_settings: Settings) -> Iterator[Flask]:
    with vigor_app(hook_settings) as application:
        yield application


@pytest.fixture
def svc(hook_app: Flask) -> Services:
    services: Services = hook_app.extensions["vigor"]
    return services


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def run_worker_until() -> Callable[..., Any]:
    """Run due jobs in this process, as ``vigor worker`` would, until ``done()`` is truthy."""

    def run(svc: Services, what: str, done: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            svc.jobs.runner.run_due()
            value = done()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    return run


@pytest.fixture
def signed_in() -> Callable[[Flask, Services, str], FlaskClient]:
    """A test client signed in to the admin web as a new user of ``role``."""

    def sign_in(app: Flask, svc: Services, role: str) -> FlaskClient:
        app.config["WTF_CSRF_ENABLED"] = False
        with svc.db.sessions() as s:
            users.add_user(s, f"{role}@example.com", PASSWORD, role=role, actor="test")
            s.commit()
        client = app.test_client()
        response = client.post(
            "/admin/login", data={"email": f"{role}@example.com", "password": PASSWORD}
        )
        assert response.status_code == 303
        return client

    return sign_in


@pytest.fixture
def bearer() -> Callable[[Services, str], dict[str, str]]:
    """The Authorization header of a new API token of ``role``."""

    made = itertools.count(1)

    def header(svc: Services, role: str) -> dict[str, str]:
        with svc.db.sessions() as s:  # live tokens have names of their own
            name = f"{role}-ci-{next(made)}"
            _, secret = api_tokens.create_token(s, name, role=role, actor="test")
        return {"Authorization": f"Bearer {secret}"}

    return header
