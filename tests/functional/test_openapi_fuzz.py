"""Schemathesis drives every documented endpoint with generated input: no 500s, and every
answer matches the OpenAPI document the server publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from server.services import Services
from tests.common.factories import make_customer, make_license, make_product, make_release


@pytest.fixture
def api_schema(app: Flask, services: Services, tmp_path: Path) -> Any:
    make_product(services)
    make_release(services, tmp_path, "1.0.0")
    services.jobs.runner.run_due()  # as a worker would: a healthy instance, /healthz 200
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def license_key(services: Services) -> str:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    make_customer(
        services, "fuzz", ("maintenance", today - timedelta(days=30), today + timedelta(days=300))
    )
    return make_license(services, "fuzz")


@pytest.fixture
def admin_token(services: Services) -> str:
    """Every scope but publishing (the publish route streams uploads: fuzzed up to its 403)."""
    from server.domain import api_tokens
    from server.domain.vocabulary import Scope

    with services.db.sessions() as s:
        _, secret = api_tokens.create_token(
            s, "fuzz", scopes=[x for x in Scope if x != Scope.RELEASES_PUBLISH], actor="test"
        )
    return secret


def test_api_conforms(api_schema: Any, license_key: str, admin_token: str) -> None:
    # Hypothesis per operation, driven directly: schemathesis' pytest plugin does not support
    # the pytest this suite runs on.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30
    # /healthz first: the admin operations queue jobs (test e-mails, webhook deliveries) that no
    # worker runs here, after which /healthz rightly answers 503.
    operations.sort(key=lambda operation: operation.path != "/healthz")
    for operation in operations:
        fuzz_operation(operation, license_key, admin_token)


def fuzz_operation(operation: Any, license_key: str, admin_token: str) -> None:
    headers = {}
    if operation.path in {"/api/v1/check", "/api/v1/report"}:
        headers["Authorization"] = f"License {license_key}"
    excluded = []
    if operation.path.startswith("/api/v1/admin/"):
        headers["Authorization"] = f"Bearer {admin_token}"
        # A schema cannot say "a cursor the server gave", "a customer that exists" or "an end
        # after the start": the admin API refuses those with 400 naming the field, as it should.
        # Every other check (no 5xx, documented statuses, answers matching their schemas) holds.
        excluded.append(positive_data_acceptance)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12 if excluded else 40,  # the admin API's many operations: fewer each
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    run()
