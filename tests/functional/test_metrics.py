"""What /metrics counts, as a scrape shows it: requests by route (never the raw path), checks
by outcome, rate-limit refusals, downloads and their bytes, storage failures, published bytes.

Counters only grow and other tests in this process count too: each test compares a scrape
before and after what it does.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import MeteredStore
from server.services import Services
from server.storage.base import BlobNotFoundError, StorageError
from server.storage.local import LocalStore
from tests.common.apps import vigor_app
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.functional.test_check import check, days


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def grew(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def licensed(services: Services, tmp_path: Path) -> str:
    make_product(services)
    make_customer(services, "initech", ("maintenance", days(-100), days(100)))
    make_release(services, tmp_path, "1.1.0")
    return make_license(services, "initech")


def test_checks_are_counted_by_outcome_and_requests_by_route(
    client: FlaskClient, licensed: str
) -> None:
    before = scrape(client)
    offered, _ = check(client, licensed, "1.0.0")
    current, _ = check(client, licensed, "1.1.0")
    refused, _ = check(client, "vgl_not-a-license")
    assert (offered.status_code, current.status_code, refused.status_code) == (200, 200, 401)
    assert offered.get_json()["signed"]["update"] and current.get_json()["signed"]["update"] is None
    client.get("/no/such/" + secrets.token_hex(8))
    after = scrape(client)
    assert grew(before, after, "vigor_checks_total", outcome="update") == 1
    assert grew(before, after, "vigor_checks_total", outcome="no_update") == 1
    code = refused.get_json()["error"]["code"]
    assert grew(before, after, "vigor_checks_total", outcome=code) == 1
    check_ok = {"route": "/api/v1/check", "method": "POST", "status": "200"}
    assert grew(before, after, "vigor_http_requests_total", **check_ok) == 2
    unmatched = {"route": "(unmatched)", "method": "GET", "status": "404"}
    assert grew(before, after, "vigor_http_requests_total", **unmatched) == 1
    timed = grew(before, after, "vigor_http_request_seconds_count", route="/api/v1/check")
    assert timed == 3
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(route and "no/such" in route for route in routes)


def test_downloads_are_counted_with_their_bytes_by_rule_not_path(
    client: FlaskClient, licensed: str
) -> None:
    offered, _ = check(client, licensed, "1.0.0")
    download = offered.get_json()["signed"]["update"]["download"]
    path = re.sub(r"^https?://[^/]+", "", download["url"])
    before = scrape(client)
    statuses = []
    for headers in ({}, {"Range": "bytes=10-"}):
        with client.get(path, headers={"Authorization": f"License {licensed}", **headers}) as got:
            got.get_data()
            statuses.append(got.status_code)
    assert statuses == [200, 206]
    after = scrape(client)
    assert grew(before, after, "vigor_downloads_total") == 2
    assert grew(before, after, "vigor_download_bytes_total") == 2 * download["size"] - 10
    link = {"route": "/api/v1/download/<token>", "method": "GET", "status": "200"}
    assert grew(before, after, "vigor_http_requests_total", **link) == 1


def test_rate_limit_refusals_are_counted_by_limit(settings: Any, licensed: str) -> None:
    with vigor_app(settings.with_(rate_limit_check="2/minute")) as app:
        client = app.test_client()
        before = scrape(client)
        codes = [check(client, licensed)[0].status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        after = scrape(client)
    assert grew(before, after, "vigor_rate_limited_total", limit="updates.check:license") == 1
    assert grew(before, after, "vigor_checks_total", outcome="rate_limited") == 1


class BrokenStore(LocalStore):
    def ping(self) -> None:
        raise StorageError("bucket gone")

    def open(self, digest: str) -> Any:
        raise BlobNotFoundError(digest)


def test_storage_failures_are_counted_by_operation_and_uploads_by_bytes(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    store = MeteredStore(BrokenStore(tmp_path / "store"))
    before = scrape(client)
    with pytest.raises(StorageError):
        store.ping()
    with pytest.raises(BlobNotFoundError):  # an answer, not a failure of the store
        store.open("0" * 64)
    writer = store.writer()
    writer.write(b"y" * 1234)
    blob = writer.commit()
    assert store.exists(blob.sha256) and store.inner.exists(blob.sha256)
    after = scrape(client)
    assert grew(before, after, "vigor_storage_failures_total", operation="ping") == 1
    assert grew(before, after, "vigor_storage_failures_total", operation="open") == 0
    assert grew(before, after, "vigor_publish_bytes_total") == 1234
