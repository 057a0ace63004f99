"""Delta patches on the server, on SQLite and PostgreSQL: which releases they start from, why a
patch is skipped (recorded, shown by `vigor release patches`), and which agents are offered which
format — an agent from before zstd (no ``patch_formats`` in its check) never gets a ``zstd1``
patch, and still gets the ``vigor1`` patches made before the upgrade."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from server.cli import cli
from server.domain.models import Patch, PatchSkip, Release
from server.services import Services
from tests.common.factories import (
    make_customer,
    make_license,
    make_product,
    make_release,
    tar_gz,
)

BODY = "\n".join(f"line {i} of the application's code" for i in range(20_000))


def build(version: str, extra: str = "") -> bytes:
    return tar_gz({"bin/app": f"#!/bin/sh\necho {version}\n", "lib/code.py": BODY + extra})


def release_id(services: Services, version: str) -> int:
    with services.db.sessions() as s:
        found = s.scalar(select(Release.id).where(Release.version == version))
        assert found is not None
        return found


def check(client: FlaskClient, key: str, version: str, **extra: Any) -> Any:
    body = {
        "product": "acme-erp",
        "version": version,
        "platform": "linux-x86_64",
        "installation_id": "inst-" + secrets.token_hex(8),
        "nonce": secrets.token_hex(16),
        **extra,
    }
    return client.post("/api/v1/check", json=body, headers={"Authorization": f"License {key}"})


@pytest.fixture
def key(services: Services) -> str:
    make_product(services)
    today = datetime.now(UTC).date()
    make_customer(
        services, "initech", ("maintenance", date(2020, 1, 1), today + timedelta(days=365))
    )
    return make_license(services, "initech")


def publish(services: Services, tmp_path: Path, version: str, content: bytes) -> None:
    make_release(services, tmp_path, version, content=content)


def made_from(services: Services, version: str) -> dict[str, str]:
    """The versions patches to ``version`` start from, with their format."""
    with services.db.sessions() as s:
        return {
            p.from_artifact.release.version: str(p.format)
            for p in s.scalars(select(Patch))
            if p.artifact.release.version == version
        }


def test_patches_start_from_the_previous_release_and_the_versions_installations_run(
    services: Services, client: FlaskClient, key: str, tmp_path: Path
) -> None:
    for n, version in enumerate(["1.0.0", "1.1.0", "1.2.0"]):
        publish(services, tmp_path, version, build(version, "x" * n))
    assert check(client, key, "1.0.0").status_code == 200  # an installation runs 1.0.0
    publish(services, tmp_path, "1.3.0", build("1.3.0", "fix"))
    assert services.make_patches(release_id(services, "1.3.0")) == 2
    assert made_from(services, "1.3.0") == {"1.2.0": "zstd1", "1.0.0": "zstd1"}  # not 1.1.0
    with services.db.sessions() as s:
        document = json.loads(s.get(Release, release_id(services, "1.3.0")).patch_manifest)  # type: ignore[union-attr]
    entry = document["signed"]["artifacts"]["linux-x86_64"]["patches"]
    assert {v: p["format"] for v, p in entry.items()} == {"1.2.0": "zstd1", "1.0.0": "zstd1"}
    assert services.make_patches(release_id(services, "1.3.0")) == 0, "made once"


def test_a_patch_not_worth_making_is_recorded_and_listed(
    app: Flask, services: Services, key: str, tmp_path: Path
) -> None:
    app_ = app
    publish(services, tmp_path, "1.0.0", tar_gz({"bin/app": os.urandom(200_000)}))
    publish(services, tmp_path, "1.1.0", tar_gz({"bin/app": os.urandom(200_000)}))
    assert services.make_patches(release_id(services, "1.1.0")) == 0
    with services.db.sessions() as s:
        skips = [
            (str(k.reason), k.from_artifact.release.version) for k in s.scalars(select(PatchSkip))
        ]
    assert skips == [("not-worth-it", "1.0.0")]
    assert made_from(services, "1.1.0") == {}
    result = app_.test_cli_runner().invoke(
        cli, ["release", "patches", "--product", "acme-erp", "--version", "1.1.0"]
    )
    assert result.exit_code == 0, result.output
    assert "  0 delta patch(es) from earlier releases" in result.output
    assert "  linux-x86_64 from 1.0.0: skipped (not-worth-it): " in result.output


def test_a_patch_that_takes_too_long_is_recorded_as_too_slow(
    services: Services, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(services, tmp_path, "1.0.0", build("1.0.0"))
    publish(services, tmp_path, "1.1.0", build("1.1.0", "fix"))
    monkeypatch.setattr(services, "settings", replace(services.settings, patch_time_limit=-1))
    assert services.make_patches(release_id(services, "1.1.0")) == 0
    with services.db.sessions() as s:
        skip = s.scalars(select(PatchSkip)).one()
        assert (skip.reason, skip.detail) == ("too-slow", "over -1 s")


def offered(response: Any) -> Any:
    assert response.status_code == 200, response.get_json()
    update_ = response.get_json()["signed"]["update"]
    return update_.get("patch")


def test_only_agents_that_read_zstd1_are_offered_it_and_old_patches_stay_offered(
    services: Services, client: FlaskClient, key: str, tmp_path: Path
) -> None:
    publish(services, tmp_path, "1.0.0", build("1.0.0"))
    publish(services, tmp_path, "1.1.0", build("1.1.0", "fix"))
    assert services.make_patches(release_id(services, "1.1.0")) == 1
    old_agent = offered(check(client, key, "1.0.0"))
    assert old_agent is None, "an agent from before zstd gets the full download"
    new_agent = offered(check(client, key, "1.0.0", patch_formats=["zstd1", "vigor1"]))
    assert new_agent is not None and new_agent["from_version"] == "1.0.0"
    assert offered(check(client, key, "1.0.0", patch_formats=["bsdiff9"])) is None
    # A patch made before the upgrade (vigor1) is still offered to old and new agents alike.
    with services.db.sessions() as s:
        s.execute(update(Patch).values(format="vigor1"))
        s.get(Release, release_id(services, "1.1.0")).product.catalog_changed()  # type: ignore[union-attr]
        s.commit()
    assert offered(check(client, key, "1.0.0")) is not None
    assert offered(check(client, key, "1.0.0", patch_formats=["zstd1", "vigor1"])) is not None
    assert offered(check(client, key, "1.0.0", patch_formats=["zstd1"])) is None


@pytest.mark.parametrize("value", ["zstd1", [1], ["x" * 40], ["zstd1"] * 17])
def test_a_malformed_patch_formats_field_is_refused(
    services: Services, client: FlaskClient, key: str, tmp_path: Path, value: Any
) -> None:
    publish(services, tmp_path, "1.0.0", build("1.0.0"))
    response = check(client, key, "1.0.0", patch_formats=value)
    assert response.status_code == 400
    assert "patch_formats" in response.get_json()["error"]["message"]
