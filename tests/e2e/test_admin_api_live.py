"""Issue #16's must-show, from outside: a billing system with a scoped token talks to a real
server process (gunicorn, two workers) over HTTP; an agent checks with the key it was given."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, make_installation

pytestmark = pytest.mark.xdist_group("admin-api-live")

TODAY = datetime.now(UTC).date()


def call(
    deployment: Deployment,
    token: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        deployment.server.url + "/api/v1/admin" + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            **({"Content-Type": "application/json"} if body is not None else {}),
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read()), dict(error.headers)


def new_token(deployment: Deployment, name: str, *scopes: str) -> str:
    args = [arg for scope in scopes for arg in ("--scope", scope)]
    made = deployment.server.vigor("token", "create", name, *args, "--expires-in", "1d")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_billing_system_runs_a_customer_through_the_api(
    deployment: Deployment, tmp_path: Path
) -> None:
    billing = new_token(deployment, "billing", "customers:write", "customers:read", "audit:read")

    status, customer, _ = call(
        deployment, billing, "POST", "/customers", {"slug": "pied-piper", "name": "Pied Piper"}
    )
    assert status == 201, customer
    status, contract, _ = call(
        deployment,
        billing,
        "POST",
        "/contracts",
        {
            "customer": "pied-piper",
            "product": "acme-erp",
            "starts_on": (TODAY - timedelta(days=30)).isoformat(),
            "ends_on": (TODAY + timedelta(days=10)).isoformat(),
        },
    )
    assert status == 201, contract
    status, lic, _ = call(
        deployment, billing, "POST", "/licenses", {"customer": "pied-piper", "product": "acme-erp"}
    )
    assert status == 201, lic

    # The key works at once: the installation's first check says its maintenance is active.
    inst = make_installation(tmp_path, deployment, "pied-piper", license_key=lic["key"])
    check = inst.agent("check", "--json")
    answer = json.loads(check.stdout)
    assert answer["entitlement"]["status"] in {"active", "expiring"}  # ends within its window
    assert answer["entitlement"]["maintenance_ends_on"] == contract["ends_on"]

    # The billing webhook is delivered twice: one renewal.
    key = {"Idempotency-Key": "stripe-evt-1PXq"}
    first = call(deployment, billing, "POST", f"/contracts/{contract['id']}/renew", {}, **key)
    second = call(deployment, billing, "POST", f"/contracts/{contract['id']}/renew", {}, **key)
    assert first[0] == second[0] == 201
    assert first[1] == second[1]
    assert second[2]["Idempotent-Replayed"] == "true"
    status, after, _ = call(deployment, billing, "GET", "/customers/pied-piper")
    assert after["maintenance"][0]["ends_on"] == first[1]["ends_on"]
    assert first[1]["starts_on"] == (TODAY + timedelta(days=11)).isoformat()
    status, audit, _ = call(
        deployment, billing, "GET", "/audit?action=contract.renew&actor=token:billing"
    )
    assert [e["target"] for e in audit["items"]] == ["pied-piper"]
    renewed = json.loads(inst.agent("check", "--json").stdout)
    assert renewed["entitlement"]["status"] == "active"
    assert renewed["entitlement"]["maintenance_ends_on"] == first[1]["ends_on"]

    # A read token cannot write, and nothing changed.
    reader = new_token(deployment, "dashboard", "read")
    before = call(deployment, reader, "GET", "/contracts?customer=pied-piper")[1]
    refused = call(
        deployment,
        reader,
        "POST",
        f"/contracts/{contract['id']}/renew",
        {},
        **{"Idempotency-Key": "x1"},
    )
    assert refused[0] == 403
    assert refused[1]["error"]["scope"] == "customers:write"
    refused = call(deployment, reader, "POST", f"/licenses/{lic['id']}/suspend")
    assert refused[0] == 403
    assert call(deployment, reader, "GET", "/contracts?customer=pied-piper")[1] == before
    assert call(deployment, reader, "GET", f"/licenses/{lic['id']}")[1]["status"] == "active"
