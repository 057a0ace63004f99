"""Staged uploads (``POST /api/v1/admin/uploads``, the artifact as the raw body) and the JSON
publish that names them, on SQLite and PostgreSQL, local storage (S3: tests/functional/storage/
test_s3_app.py). Every refusal leaves nothing published and no blob or temporary file behind."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from server.cli import cli
from server.config import Settings
from server.domain import api_tokens, products
from server.domain.models import Artifact, AuditEvent, Job, Release, StagedUpload, utcnow
from server.services import Services
from tests.common.apps import vigor_app

UPLOADS = "/api/v1/admin/uploads"
RELEASES = "/api/v1/admin/releases"
LINUX = b"linux build " * 1000
WINDOWS = b"windows build " * 1000


@pytest.fixture
def product(services: Services) -> str:
    with services.db.sessions() as s:
        products.add_product(s, "acme-erp", "Acme ERP", actor="test")
    return "acme-erp"


def new_token(services: Services, name: str, *scopes: str) -> str:
    with services.db.sessions() as s:
        _, secret = api_tokens.create_token(
            s, name, scopes=scopes or ("releases:publish",), actor="test"
        )
    return secret


@pytest.fixture
def token(services: Services) -> str:
    return new_token(services, "ci")


def state(services: Services) -> dict[str, Any]:
    """What a refusal must leave as it was: releases, artifacts, jobs, staged uploads (and
    whether used), stored blobs and temporary files."""
    with services.db.sessions() as s:
        return {
            "releases": s.scalar(select(func.count()).select_from(Release)),
            "artifacts": s.scalar(select(func.count()).select_from(Artifact)),
            "jobs": s.scalar(select(func.count()).select_from(Job)),
            "uploads": sorted(
                tuple(row)
                for row in s.execute(select(StagedUpload.public_id, StagedUpload.used_at))
            ),
            "blobs": sorted(services.store.digests()),
            "temp": sorted(
                p.name
                for p in services.settings.storage_root.rglob("*")
                if p.is_file() and ".tmp" in p.parts
            ),
        }


def upload(
    client: FlaskClient, token: str | None, data: bytes, query: str = "", **headers: str
) -> Any:
    sent = {"Content-Type": "application/octet-stream", **headers}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    return client.post(f"{UPLOADS}{query}", data=data, headers=sent)


def publish(client: FlaskClient, token: str, **fields: Any) -> Any:
    body = {"product": "acme-erp", "version": "1.0.0", "kind": "update", **fields}
    return client.post(RELEASES, json=body, headers={"Authorization": f"Bearer {token}"})


def staged(client: FlaskClient, token: str, data: bytes, query: str = "") -> str:
    answer = upload(client, token, data, query)
    assert answer.status_code == 201, answer.get_json()
    upload_id: str = answer.get_json()["id"]
    return upload_id


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_then_publish_json_like_the_form(
    client: FlaskClient, services: Services, product: str, token: str
) -> None:
    digest = base64.b64encode(hashlib.sha256(LINUX).digest()).decode()
    first = upload(
        client,
        token,
        LINUX,
        "?filename=acme-1.0.tar.gz",
        **{"Repr-Digest": f"sha-512=:AAAA:, sha-256=:{digest}:"},
    )
    assert first.status_code == 201, first.get_json()
    answer = first.get_json()
    assert answer["id"].startswith("upl_")
    assert (answer["size"], answer["sha256"], answer["filename"]) == (
        len(LINUX),
        sha(LINUX),
        "acme-1.0.tar.gz",
    )
    assert answer["expires_at"] > answer["created_at"]
    second = staged(client, token, WINDOWS, f"?sha256={sha(WINDOWS).upper()}")
    assert state(services)["releases"] == 0, "an upload publishes nothing by itself"

    response = publish(
        client,
        token,
        kind="security",
        severity="critical",
        notes="Fixes CVE-0000",
        artifacts={"linux-x86_64": answer["id"], "windows-x86_64": second},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "published"
    assert {a["platform"]: (a["sha256"], a["size"]) for a in body["artifacts"]} == {
        "linux-x86_64": (sha(LINUX), len(LINUX)),
        "windows-x86_64": (sha(WINDOWS), len(WINDOWS)),
    }
    signed = body["manifest"]["signed"]
    assert signed["severity"] == "critical"
    assert signed["artifacts"]["linux-x86_64"]["filename"] == "acme-1.0.tar.gz"
    assert signed["artifacts"]["windows-x86_64"]["filename"] == "acme-erp-1.0.0-windows-x86_64"
    with services.store.open(sha(LINUX)) as stored:
        assert stored.read() == LINUX
    with services.db.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "release.publish"))
        assert event is not None and event.actor == "token:ci"
        kinds = set(s.scalars(select(Job.kind)))
        assert "patches" in kinds, "its delta patches are queued, as for the form"

    # Used once: naming it again is refused, naming the platform, and publishes nothing.
    before = state(services)
    again = publish(client, token, version="1.0.1", artifacts={"linux-x86_64": second})
    assert again.status_code == 400
    error = again.get_json()["error"]
    assert error["field"] == "artifacts.linux-x86_64"
    assert "used already" in error["message"]
    assert state(services) == before


def test_upload_refusals_keep_nothing(
    client: FlaskClient, settings: Settings, services: Services, product: str, token: str
) -> None:
    before = state(services)

    wrong = upload(client, token, LINUX, f"?sha256={sha(WINDOWS)}")
    assert wrong.status_code == 422
    assert wrong.get_json()["error"]["code"] == "digest_mismatch"
    assert sha(LINUX) in wrong.get_json()["error"]["message"]
    other = base64.b64encode(hashlib.sha256(WINDOWS).digest()).decode()
    assert upload(client, token, LINUX, **{"Repr-Digest": f"sha-256=:{other}:"}).status_code == 422

    refusals = {
        "malformed digest": upload(client, token, LINUX, **{"Repr-Digest": "sha-256=abc"}),
        "no sha-256": upload(client, token, LINUX, **{"Repr-Digest": "sha-512=:AAAA:"}),
        "bad hex": upload(client, token, LINUX, "?sha256=xyz"),
        "empty": client.post(
            UPLOADS,
            input_stream=io.BytesIO(b""),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
                "Content-Length": "0",
            },
        ),
        "long filename": upload(client, token, LINUX, "?filename=" + "a" * 300),
    }
    for name, answer in refusals.items():
        assert answer.status_code == 400, name
        assert answer.get_json()["error"]["code"] == "invalid_request", name

    assert upload(client, token, LINUX, **{"Content-Type": "text/plain"}).status_code == 415
    no_length = client.post(
        UPLOADS,
        input_stream=io.BytesIO(LINUX),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream",
            "Transfer-Encoding": "chunked",  # a length the server learns only at the end
        },
    )
    assert no_length.status_code == 411
    assert no_length.get_json()["error"]["code"] == "length_required"
    cut_off = client.post(
        UPLOADS,
        input_stream=io.BytesIO(LINUX),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream",
        },
        # The client promised more, then went away.
        environ_overrides={"CONTENT_LENGTH": str(len(LINUX) + 100_000)},
    )
    assert cut_off.status_code == 400

    assert upload(client, None, LINUX).status_code == 401
    reader = new_token(services, "reader", "releases:read")
    forbidden = upload(client, reader, LINUX)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"]["scope"] == "releases:publish"

    with vigor_app(dataclasses.replace(settings, max_upload_bytes=len(LINUX) - 1)) as limited:
        too_large = upload(limited.test_client(), token, LINUX)
        assert too_large.status_code == 413
        assert too_large.get_json()["error"]["code"] == "too_large"
    assert state(services) == before


def test_json_publish_refusals_name_the_platform_and_give_uploads_back(
    client: FlaskClient, services: Services, product: str, token: str
) -> None:
    mine = staged(client, token, LINUX)
    theirs = staged(client, new_token(services, "other-ci"), WINDOWS)
    late = staged(client, token, WINDOWS + b"late")
    with services.db.session() as s:
        s.execute(
            update(StagedUpload)
            .where(StagedUpload.public_id == late)
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    before = state(services)
    cases: dict[str, tuple[dict[str, Any], int, str | None, str]] = {
        "unknown upload": (
            {"artifacts": {"linux-x86_64": "upl_nope"}},
            400,
            "artifacts.linux-x86_64",
            "no upload 'upl_nope' by this token",
        ),
        "another token's": (
            {"artifacts": {"linux-x86_64": mine, "windows-x86_64": theirs}},
            400,
            "artifacts.windows-x86_64",
            "by this token",
        ),
        "expired": ({"artifacts": {"any": late}}, 400, "artifacts.any", "expired at"),
        "not an id": ({"artifacts": {"any": 7}}, 400, "artifacts.any", "give the id"),
        "no artifacts": ({}, 400, "artifacts", "upload id"),
        "unknown platform": (
            {"artifacts": {"amiga-m68k": mine}},
            400,
            "platform",
            "unknown platform 'amiga-m68k'",
        ),
        "bad version": (
            {"version": "x y", "artifacts": {"any": mine}},
            400,
            None,
            "version",
        ),
        "bad field type": ({"notes": 5, "artifacts": {"any": mine}}, 400, "notes", "string"),
        "NUL": ({"notes": "a\x00b", "artifacts": {"any": mine}}, 400, "notes", "NUL"),
        "NUL in an id": ({"artifacts": {"any": "upl_\x00"}}, 400, "artifacts", "NUL"),
        "draft not a boolean": (
            {"draft": "yes", "artifacts": {"any": mine}},
            400,
            "draft",
            "true or false",
        ),
        "bad customers": ({"customers": [1], "artifacts": {"any": mine}}, 400, "customers", ""),
        "unknown customer": (
            {"customers": ["initech"], "artifacts": {"any": mine}},
            400,
            "customers",
            "unknown customer",
        ),
    }
    for name, (fields, status, field, words) in cases.items():
        answer = publish(client, token, **fields)
        assert answer.status_code == status, (name, answer.get_json())
        error = answer.get_json()["error"]
        if field is not None:
            assert error["field"] == field, name
        assert words in error["message"], name
        assert state(services) == before, name
    assert (
        client.post(
            RELEASES,
            data="[1]",
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 400
    )

    # A publish refused after taking the upload (the version exists) gives it back.
    assert publish(client, token, version="0.9", artifacts={"any": staged(client, token, b"old")})
    before = state(services)
    conflict = publish(client, token, version="0.9.0", artifacts={"any": mine})
    assert conflict.status_code == 409
    assert state(services) == before
    assert publish(client, token, artifacts={"any": mine}).status_code == 201


def test_gc_forgets_uploads_not_used_within_a_day(
    app: Flask, client: FlaskClient, services: Services, product: str, token: str
) -> None:
    unused = staged(client, token, WINDOWS)
    used = staged(client, token, LINUX)
    assert publish(client, token, artifacts={"linux-x86_64": used}).status_code == 201
    runner = app.test_cli_runner()
    fresh = runner.invoke(cli, args=["gc"])
    assert fresh.exit_code == 0, fresh.output
    assert "forgot 0 staged upload(s)" in fresh.output
    assert "deleted 0 unreferenced blob(s)" in fresh.output
    assert services.store.exists(sha(WINDOWS)), "an upload waiting for its publish stays"

    with services.db.session() as s:
        s.execute(update(StagedUpload).values(created_at=utcnow() - timedelta(hours=25)))
    dry = runner.invoke(cli, args=["gc", "--dry-run"])
    assert "would forget 2 staged upload(s)" in dry.output
    assert len(state(services)["uploads"]) == 2
    swept = runner.invoke(cli, args=["gc"])
    assert swept.exit_code == 0, swept.output
    assert "forgot 2 staged upload(s)" in swept.output
    assert "deleted 1 unreferenced blob(s)" in swept.output
    assert state(services)["uploads"] == []
    assert state(services)["blobs"] == [sha(LINUX)], "the published one stays"
    late = publish(client, token, version="1.1", artifacts={"any": unused})
    assert late.status_code == 400
    assert "no upload" in late.get_json()["error"]["message"]
