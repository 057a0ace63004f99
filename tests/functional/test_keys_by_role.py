"""Online keys by role, as an operator drives them: `vigor init` makes a release key and a check
key, every later root keeps them apart, and an instance set up with one key for both moves to
separate keys with `vigor keys separate-roles`. The root key is encrypted when asked, and key
files are readable by their owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from server.cli import cli
from server.domain import roots
from server.domain.models import TrustRoot
from server.domain.trust import Root, build_root, sign_document, verify_role
from server.keyring import load_key_file
from server.services import Services
from tests.functional.test_trust_chain import roots_chain, walk


def root_versions(services: Services) -> int:
    with services.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(TrustRoot)) or 0


def share_one_key(services: Services) -> Root:
    """Root N+1 as `vigor init` wrote roots before roles had keys of their own: the release key
    signs for the check role too."""
    current = services.root()
    (release,) = current.role("release").keyids
    public = current.keys[release]
    signed = build_root(
        current.version + 1,
        current.expires,
        [current.keys[k] for k in current.role("root").keyids],
        [public],
        [public],
    )
    root_key = load_key_file(services.settings.keys_dir / "root.pem")
    with services.db.session() as session:
        root = roots.store_root(session, sign_document(signed, [root_key]))
    services.forget_root()
    return root


def test_init_names_different_keys_for_release_and_check(app: Flask, services: Services) -> None:
    root = walk(roots_chain(app))
    assert isinstance(root, Root)
    assert root.shared_online_keys() == set()
    assert services.signer("release").keyid != services.signer("check").keyid
    keys_dir = services.settings.keys_dir
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    for key in keys_dir.glob("*.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_a_root_naming_one_key_for_both_roles_is_refused(app: Flask, services: Services) -> None:
    release = services.signer("release").keyid
    result = app.test_cli_runner().invoke(
        cli,
        args=[
            "keys",
            "write-root",
            "--root-key",
            str(services.settings.keys_dir / "root.pem"),
            "--check-key",
            release,
        ],
    )
    assert result.exit_code == 1
    assert "release and check roles must have different keys" in result.output
    assert "vigor keys separate-roles" in result.output
    assert root_versions(services) == 1


def test_rotating_the_online_keys_keeps_the_roles_apart(app: Flask, services: Services) -> None:
    before = services.root()
    result = app.test_cli_runner().invoke(
        cli,
        args=["keys", "rotate-online", "--root-key", str(services.settings.keys_dir / "root.pem")],
    )
    assert result.exit_code == 0, result.output
    root = walk(roots_chain(app))
    assert isinstance(root, Root) and root.version == 2
    assert root.shared_online_keys() == set()
    old = set(before.role("release").keyids) | set(before.role("check").keyids)
    new = set(root.role("release").keyids) | set(root.role("check").keyids)
    assert not old & new


def test_separate_roles_gives_an_older_instance_a_check_key(app: Flask, services: Services) -> None:
    legacy = share_one_key(services)
    (shared,) = legacy.shared_online_keys()
    runner = app.test_cli_runner()
    status = runner.invoke(cli, args=["keys", "status"]).output
    assert "share a key; run `vigor keys separate-roles" in status
    root_key = str(services.settings.keys_dir / "root.pem")
    result = runner.invoke(cli, args=["keys", "separate-roles", "--root-key", root_key])
    assert result.exit_code == 0, result.output
    assert "share a key" not in runner.invoke(cli, args=["keys", "status"]).output
    root = walk(roots_chain(app))
    assert isinstance(root, Root) and root.version == legacy.version + 1
    assert root.role("release").keyids == (shared,), "the release key and its manifests stay"
    (check,) = root.role("check").keyids
    assert check != shared and f"check key {check}" in result.output
    assert services.signer("check").keyid == check
    answer = sign_document({"type": "check"}, [services.signer("check")])
    verify_role(answer, root, "check", "check")
    # Once separate, there is nothing left to separate, and no root or key is written.
    keys_before = sorted(services.settings.keys_dir.iterdir())
    again = runner.invoke(cli, args=["keys", "separate-roles", "--root-key", root_key])
    assert again.exit_code == 1
    assert f"root version {root.version} already names different keys" in again.output
    assert root_versions(services) == root.version
    assert sorted(services.settings.keys_dir.iterdir()) == keys_before


def test_a_refused_rotation_leaves_no_root_and_no_key(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    share_one_key(services)
    stranger = tmp_path / "stranger.pem"
    assert (
        app.test_cli_runner().invoke(cli, args=["keys", "create-root", str(stranger)]).exit_code
        == 0
    )
    keys_before = sorted(services.settings.keys_dir.iterdir())
    versions = root_versions(services)
    for command in ("separate-roles", "rotate-online"):
        result = app.test_cli_runner().invoke(
            cli, args=["keys", command, "--root-key", str(stranger)]
        )
        assert result.exit_code == 1, result.output
        assert "is not signed by root" in result.output
        assert sorted(services.settings.keys_dir.iterdir()) == keys_before
        assert root_versions(services) == versions


def _init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIGOR_INSTANCE_DIR": str(tmp_path / "instance"),
        "VIGOR_STORAGE_ROOT": str(tmp_path / "releases"),
    }
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "init", *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal: no prompt
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("encrypted", [True, False], ids=["passphrase-file", "no-passphrase"])
def test_init_says_where_the_root_key_is_and_encrypts_it_when_asked(
    tmp_path: Path, encrypted: bool
) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery\n")
    result = _init(tmp_path, *(["--passphrase-file", str(passphrase)] if encrypted else []))
    assert result.returncode == 0, result.stderr
    key = (tmp_path / "instance" / "keys" / "root.pem").resolve()
    assert f"root key: {key}" in result.stdout
    assert "move it offline now" in result.stdout
    assert ("encrypted with your passphrase" in result.stdout) == encrypted
    assert ("NOT encrypted" in result.stdout) != encrypted
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED") == encrypted
    if encrypted:
        assert load_key_file(key, "correct horse battery").keyid
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Run again: the instance has its root; nothing is asked or created.
    again = _init(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "root key:" not in again.stdout
    assert "root of trust: version 1" in again.stdout


def test_rotation_reads_the_root_key_passphrase_from_a_file(
    app: Flask, services: Services, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    new_key = tmp_path / "root-2.pem"
    made = runner.invoke(
        cli, args=["keys", "create-root", str(new_key), "--passphrase-file", str(passphrase)]
    )
    assert made.exit_code == 0, made.output
    assert "(encrypted); keep it offline" in made.output
    old_key = str(services.settings.keys_dir / "root.pem")
    rotate = ["keys", "write-root", "--root-key", old_key, "--new-root-key", str(new_key)]
    result = runner.invoke(cli, args=rotate)
    assert result.exit_code == 1
    assert "encrypted; a passphrase is required" in result.output
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong horse\n")
    result = runner.invoke(cli, args=[*rotate, "--passphrase-file", str(wrong)])
    assert result.exit_code == 1
    assert "not a valid key file or the passphrase is wrong" in result.output
    assert root_versions(services) == 1
    # The old root key is not encrypted, the new one is: the passphrase opens the new one.
    result = runner.invoke(cli, args=[*rotate, "--passphrase-file", str(passphrase)])
    assert result.exit_code == 0, result.output
    assert root_versions(services) == 2


def test_at_a_terminal_the_passphrases_are_asked_for(
    app: Flask, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.cli.common.interactive", lambda: True)
    monkeypatch.setattr("server.cli.keys.interactive", lambda: True)
    runner = app.test_cli_runner()
    new_key = tmp_path / "root-2.pem"
    made = runner.invoke(
        cli, args=["keys", "create-root", str(new_key)], input="tr0ub4dor\ntr0ub4dor\n"
    )
    assert made.exit_code == 0, made.output
    assert "(encrypted)" in made.output
    assert load_key_file(new_key, "tr0ub4dor").keyid
    old_key = str(services.settings.keys_dir / "root.pem")
    rotate = ["keys", "write-root", "--root-key", old_key, "--new-root-key", str(new_key)]
    result = runner.invoke(cli, args=rotate, input="tr0ub4dor\n")
    assert result.exit_code == 0, result.output
    assert f"Passphrase of {new_key}" in result.output
    assert root_versions(services) == 2
    # An empty answer leaves a new key unencrypted, and says so.
    plain = tmp_path / "plain.pem"
    made = runner.invoke(cli, args=["keys", "create-root", str(plain)], input="\n\n")
    assert made.exit_code == 0, made.output
    assert "(NOT encrypted)" in made.output


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the passphrase file"), ("", "is empty"), (b"\xff\xfe", "is not text")],
    ids=["missing", "empty", "not-text"],
)
def test_a_bad_passphrase_file_is_one_clear_error_and_writes_no_key(
    app: Flask, tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    passphrase = tmp_path / "passphrase"
    if isinstance(content, bytes):
        passphrase.write_bytes(content)
    elif content is not None:
        passphrase.write_text(content)
    key = tmp_path / "root-2.pem"
    result = app.test_cli_runner().invoke(
        cli, args=["keys", "create-root", str(key), "--passphrase-file", str(passphrase)]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert not key.exists()


def test_a_root_written_to_expire_soon_is_warned_about(app: Flask, services: Services) -> None:
    runner = app.test_cli_runner()
    assert "warning" not in runner.invoke(cli, args=["keys", "status"]).output
    root_key = str(services.settings.keys_dir / "root.pem")
    written = runner.invoke(
        cli, args=["keys", "write-root", "--root-key", root_key, "--expires-days", "10"]
    )
    assert written.exit_code == 0, written.output
    services.forget_root()
    status = runner.invoke(cli, args=["keys", "status"]).output
    assert "warning: this root expires within 30 days: run `vigor keys write-root`" in status
    health = app.test_client().get("/healthz").get_json()
    trust = {probe["name"]: probe for probe in health["probes"]}["trust"]
    assert trust["status"].startswith("warning: the root of trust expires in 10 days")
    assert trust["root_version"] == 2
