"""The root of trust as users drive it: vigor keys commands and the root endpoints."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask

from server.cli import cli
from server.domain.trust import verify_role, verify_root
from server.services import Services


def roots_chain(app: Flask) -> list[dict]:
    client = app.test_client()
    chain = []
    n = 1
    while (response := client.get(f"/api/v1/root/{n}.json")).status_code == 200:
        chain.append(response.get_json())
        n += 1
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    return chain


def walk(chain: list[dict]) -> object:
    trusted = None
    for document in chain:
        trusted = verify_root(document, trusted)
    return trusted


def test_init_made_root_v1_served_at_both_urls(app: Flask) -> None:
    client = app.test_client()
    newest = client.get("/api/v1/root.json")
    assert newest.status_code == 200
    assert newest.get_json() == client.get("/api/v1/root/1.json").get_json()
    assert verify_root(newest.get_json(), None).version == 1


def test_root_rotation_with_new_root_key_keeps_the_chain_walkable(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    new_key = tmp_path / "root2.pem"
    assert runner.invoke(cli, args=["keys", "create-root", str(new_key)]).exit_code == 0
    old_key = services.settings.keys_dir / "root.pem"
    result = runner.invoke(
        cli, args=["keys", "write-root", "--root-key", str(old_key), "--new-root-key", str(new_key)]
    )
    assert result.exit_code == 0, result.output
    chain = roots_chain(app)
    assert [d["signed"]["version"] for d in chain] == [1, 2]
    walk(chain)
    # The old root key alone can no longer write root 3.
    refused = runner.invoke(cli, args=["keys", "write-root", "--root-key", str(old_key)])
    assert refused.exit_code == 1
    assert "not signed by root 2" in refused.output
    assert len(roots_chain(app)) == 2


def test_encrypted_root_key_needs_its_passphrase(app: Flask, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    monkeypatch.setenv("ROOT_PASS", "correct horse")
    key = tmp_path / "root-enc.pem"
    assert (
        runner.invoke(
            cli, args=["keys", "create-root", str(key), "--passphrase-env", "ROOT_PASS"]
        ).exit_code
        == 0
    )
    assert b"ENCRYPTED" in key.read_bytes()
    result = runner.invoke(cli, args=["keys", "write-root", "--root-key", str(key)])
    assert result.exit_code == 1
    assert "encrypted; a passphrase is required" in result.output


def test_rotating_the_online_key_resigns_manifests(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(cli, args=["product", "add", "acme"]).exit_code == 0
    artifact = tmp_path / "a.tgz"
    artifact.write_bytes(b"bytes")
    assert (
        runner.invoke(
            cli,
            args=[
                "release",
                "publish",
                "--product",
                "acme",
                "--version",
                "1.0",
                "--kind",
                "update",
                "--file",
                f"any={artifact}",
            ],
        ).exit_code
        == 0
    )
    before = json.loads(
        runner.invoke(cli, args=["release", "list", "--product", "acme", "--json"]).output
    )
    old_keyid = before[0]["manifest"]["signatures"][0]["keyid"]
    result = runner.invoke(
        cli,
        args=["keys", "rotate-online", "--root-key", str(services.settings.keys_dir / "root.pem")],
    )
    assert result.exit_code == 0, result.output
    assert "1 manifests re-signed" in result.output
    root = walk(roots_chain(app))
    after = json.loads(
        runner.invoke(cli, args=["release", "list", "--product", "acme", "--json"]).output
    )
    manifest = after[0]["manifest"]
    assert manifest["signed"] == before[0]["manifest"]["signed"], "signed content never changes"
    assert manifest["signatures"][0]["keyid"] != old_keyid
    verify_role(manifest, root, "release", "release")  # type: ignore[arg-type]


def test_export_root_writes_the_file_agents_pin(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "root.json"
    result = app.test_cli_runner().invoke(cli, args=["keys", "export-root", "--out", str(out)])
    assert result.exit_code == 0
    assert verify_root(json.loads(out.read_text()), None).version == 1
