"""The agent against a real server process: updates, rollback, prompts, and every refusal.

Each refusal ends with the installed application unchanged and runnable.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.demo import demo_archive
from server.domain.trust import KeySigner, sign_document
from server.keyring import load_key_file
from tests.common.factories import tar_gz
from tests.e2e.conftest import Deployment, make_installation

APPLIED, AVAILABLE, REFUSED, NETWORK, INSTALL_FAILED = 10, 11, 20, 30, 40


def reports(deployment: Deployment) -> list[tuple[str, str]]:
    db = sqlite3.connect(deployment.server.base / "instance" / "vigor.db")
    try:
        return db.execute(
            "SELECT outcome, COALESCE(code, '') FROM apply_reports ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def test_update_to_newest_entitled_then_rollback(deployment: Deployment, tmp_path: Path) -> None:
    inst = make_installation(tmp_path, deployment, "initech")
    before = len(reports(deployment))
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    assert "4.0.0 → 5.0.1" in result.stdout
    assert inst.current_version() == "5.0.1"
    assert inst.runs() == "acme-erp 5.0.1"
    assert reports(deployment)[before:] == [("success", "")]
    again = inst.agent("update")
    assert again.returncode == 0
    assert "up to date" in again.stdout
    back = inst.agent("rollback")
    assert back.returncode == 0, back.stderr
    assert inst.current_version() == "4.0.0"
    assert inst.runs() == "acme-erp 4.0.0"
    verified = inst.agent("verify")
    assert verified.returncode == REFUSED  # 4.0.0 came from the installer: no signed manifest kept
    assert "no signed manifest" in verified.stdout


def test_lapsed_license_stops_at_its_cutoff_and_sees_the_renewal_prompt(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = make_installation(tmp_path, deployment, "hooli")
    status = inst.agent("status")
    assert status.returncode == 0, status.stderr
    assert "maintenance: lapsed" in status.stdout
    assert "Renueve el mantenimiento" in status.stdout, "Hooli's vendor set Spanish"
    assert "renew at https://vendor.example/renew" in status.stdout
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    assert inst.current_version() == "4.1.1"  # the critical fix published while covered
    assert "Renueve el mantenimiento para recibir" in result.stdout
    check = inst.agent("check", "--json")
    data = json.loads(check.stdout)
    assert data["update"] is None
    assert data["entitlement"]["status"] == "lapsed"
    assert data["renewal"]["newest_version"] == "5.0.1"


def test_the_server_writes_in_the_language_of_the_agent_s_locale(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = make_installation(tmp_path, deployment, "initech")  # no language set by the vendor
    spanish = inst.agent("status", env={"LC_ALL": "", "LC_MESSAGES": "", "LANG": "es_ES.UTF-8"})
    assert "El mantenimiento está activo hasta el" in spanish.stdout, spanish.stdout
    english = inst.agent("status", env={"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"})
    assert "Maintenance is active until" in english.stdout, english.stdout


def test_never_covered_license_gets_nothing_and_is_told_to_buy(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = make_installation(tmp_path, deployment, "vandelay")
    result = inst.agent("update")
    assert result.returncode == 0
    assert "Buy maintenance" in result.stdout
    assert inst.current_version() == "4.0.0"


def test_end_of_life_line_is_told_and_offered_the_way_out(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = make_installation(tmp_path, deployment, "initech", version="3.8.0")
    check = inst.agent("check")
    assert check.returncode == AVAILABLE
    assert "3.x is no longer supported" in check.stdout
    assert "update available: 5.0.1" in check.stdout


def test_download_then_apply_and_resume_a_partial_download(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = make_installation(tmp_path, deployment, "initech")
    data = json.loads(inst.agent("check", "--json").stdout)
    artifact = demo_archive("5.0.1")
    assert data["update"]["sha256"] and data["update"]["size"] == len(artifact)
    downloads = tmp_path / "state" / "downloads"
    (downloads / f"{data['update']['sha256']}.part").write_bytes(artifact[: len(artifact) // 2])
    fetched = inst.agent("download")
    assert fetched.returncode == 0, fetched.stderr
    assert any(
        h.get("Range") == f"bytes={len(artifact) // 2}-" for h in deployment.proxy.seen_headers
    )
    applied = inst.agent("apply")
    assert applied.returncode == APPLIED, applied.stderr
    assert inst.runs() == "acme-erp 5.0.1"


def test_server_ignoring_range_means_starting_again(deployment: Deployment, tmp_path: Path) -> None:
    inst = make_installation(tmp_path, deployment, "initech")
    data = json.loads(inst.agent("check", "--json").stdout)
    (tmp_path / "state" / "downloads" / f"{data['update']['sha256']}.part").write_bytes(
        b"stale partial bytes"
    )
    deployment.proxy.mode = "ignore-range"
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    assert inst.runs() == "acme-erp 5.0.1"


# --------------------------------------------------------------------------- the refusal suite


def online_signer(deployment: Deployment, role: str) -> KeySigner:
    """The server's own key for ``role`` (``release`` or ``check``), as its root names it."""
    root = json.loads(deployment.root_file.read_text())["signed"]
    (keyid,) = root["roles"][role]["keyids"]
    return load_key_file(deployment.server.base / "instance" / "keys" / f"online-{keyid}.pem")


def manifest_of(deployment: Deployment, version: str) -> dict[str, Any]:
    listing = json.loads(
        deployment.server.vigor("release", "list", "--product", "acme-erp", "--json").stdout
    )
    return next(r["manifest"] for r in listing if r["version"] == version)


def resigned(
    deployment: Deployment, change: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A check hook that edits the signed part and signs it again with the server's own key."""

    def hook(document: dict[str, Any]) -> dict[str, Any]:
        signed = copy.deepcopy(document["signed"])
        change(signed)
        return sign_document(signed, [online_signer(deployment, "check")])

    return hook


def signed_manifest(
    deployment: Deployment, version: str, role: str = "release", **changes: Any
) -> dict[str, Any]:
    signed = copy.deepcopy(manifest_of(deployment, version)["signed"])
    signed.update(changes)
    return sign_document(signed, [online_signer(deployment, role)])


def signed_by(role: str) -> Callable[[Deployment], Callable[[dict[str, Any]], dict[str, Any]]]:
    """A check hook that signs the server's answer again with the server's own ``role`` key."""
    return lambda d: lambda document: sign_document(document["signed"], [online_signer(d, role)])


def offer(deployment: Deployment, manifest: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(signed: dict[str, Any]) -> None:
        assert signed["update"] is not None
        signed["update"]["manifest"] = manifest
        signed["update"]["version"] = manifest["signed"]["version"]

    return change


def bad_signature(document: dict[str, Any]) -> dict[str, Any]:
    sig = document["signatures"][0]["sig"]
    document["signatures"][0]["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    return document


def no_signature(document: dict[str, Any]) -> dict[str, Any]:
    document["signatures"] = []
    return document


def unknown_key(document: dict[str, Any]) -> dict[str, Any]:
    return sign_document(document["signed"], [KeySigner(Ed25519PrivateKey.generate())])


Setup = Callable[[Deployment], None]


def proxy_mode(mode: str) -> Setup:
    def setup(deployment: Deployment) -> None:
        deployment.proxy.mode = mode

    return setup


def hook(make: Callable[[Deployment], Callable[[dict[str, Any]], dict[str, Any]]]) -> Setup:
    def setup(deployment: Deployment) -> None:
        deployment.proxy.check_hook = make(deployment)

    return setup


REFUSALS: dict[str, tuple[Setup, int, str]] = {
    "flipped-byte": (proxy_mode("flip-byte"), REFUSED, "SHA-256"),
    "truncated-artifact": (proxy_mode("truncate"), NETWORK, "ended early"),
    "endless-body": (proxy_mode("endless"), REFUSED, "more than the manifest"),
    "content-encoding-gzip": (proxy_mode("gzip"), REFUSED, "Content-Encoding"),
    "bad-signature": (hook(lambda d: bad_signature), REFUSED, "not signed"),
    "missing-signature": (hook(lambda d: no_signature), REFUSED, "not signed"),
    "key-root-does-not-name": (hook(lambda d: unknown_key), REFUSED, "not signed"),
    "downgrade-offer": (
        hook(lambda d: resigned(d, offer(d, manifest_of(d, "3.9.0")))),
        REFUSED,
        "not newer",
    ),
    "manifest-for-another-product": (
        hook(lambda d: resigned(d, offer(d, signed_manifest(d, "5.0.1", product="other-app")))),
        REFUSED,
        "is for 'other-app'",
    ),
    "manifest-for-another-platform": (
        hook(
            lambda d: resigned(
                d,
                offer(
                    d,
                    signed_manifest(
                        d,
                        "5.0.1",
                        artifacts={
                            "windows-x86_64": {"filename": "a.zip", "size": 1, "sha256": "0" * 64}
                        },
                    ),
                ),
            )
        ),
        REFUSED,
        "no artifact for linux-x86_64",
    ),
    "manifest-signed-by-the-check-key": (
        hook(lambda d: resigned(d, offer(d, signed_manifest(d, "5.0.1", role="check")))),
        REFUSED,
        "not signed by the keys root names for 'release'",
    ),
    "check-signed-by-the-release-key": (
        hook(signed_by("release")),
        REFUSED,
        "not signed by the keys root names for 'check'",
    ),
    "check-for-another-installation": (
        hook(lambda d: resigned(d, lambda s: s.update(installation_id="inst-someone-else-000"))),
        REFUSED,
        "another installation",
    ),
}


@pytest.mark.parametrize(("setup", "code", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_leave_the_application_unchanged(
    deployment: Deployment, tmp_path: Path, setup: Setup, code: int, message: str
) -> None:
    inst = make_installation(tmp_path, deployment, "initech")
    setup(deployment)
    result = inst.agent("update")
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, "one line, no traceback"
    assert inst.current_version() == "4.0.0"
    assert inst.runs() == "acme-erp 4.0.0"
    assert not list((tmp_path / "app" / "versions").glob(".staging-*"))


def test_replayed_check_response_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    inst = make_installation(tmp_path, deployment, "initech")
    deployment.proxy.mode = "replay"
    assert inst.agent("check").returncode == AVAILABLE  # recorded
    result = inst.agent("update")  # answered with the recorded response: an old nonce
    assert result.returncode == REFUSED
    assert "nonce" in result.stderr
    assert inst.runs() == "acme-erp 4.0.0"


# --------------------------------------------------------------------------- hostile archives, health


def publish_product(
    deployment: Deployment,
    tmp_path: Path,
    slug: str,
    good: bytes,
    bad: bytes,
    *new_release_options: str,
) -> str:
    """A product with a good 1.0.0 (installed) and a newer 1.1.0; returns a license key."""
    vigor = deployment.server.vigor
    assert vigor("product", "add", slug).returncode == 0
    releases = (
        ("1.0.0", good, ("--kind", "update")),
        ("1.1.0", bad, new_release_options or ("--kind", "update")),
    )
    for version, content, options in releases:
        path = tmp_path / f"{slug}-{version}.tar.gz"
        path.write_bytes(content)
        published = vigor(
            "release",
            "publish",
            "--product",
            slug,
            "--version",
            version,
            *options,
            "--file",
            f"any={path}",
        )
        assert published.returncode == 0, published.stderr
    assert (
        vigor(
            "contract",
            "add",
            "--customer",
            "initech",
            "--product",
            slug,
            "--from",
            "2020-01-01",
            "--to",
            "2099-12-31",
        ).returncode
        == 0
    )
    issued = vigor("license", "issue", "--customer", "initech", "--product", slug)
    return issued.stdout.strip().splitlines()[0]


def app_files(version: str, exit_code: int = 0) -> dict[str, bytes | str]:
    return {"bin/acme-erp": f"#!/bin/sh\necho acme-erp {version}\nexit {exit_code}\n"}


HOSTILE: dict[str, tuple[bytes, int, str]] = {
    "dot-dot-entry": (
        tar_gz({**app_files("1.1.0"), "../../escaped.txt": "gotcha"}),
        INSTALL_FAILED,
        "unsafe path",
    ),
    "absolute-entry": (
        tar_gz({**app_files("1.1.0"), "/tmp/vigor-absolute-escape": "gotcha"}),
        INSTALL_FAILED,
        "unsafe path",
    ),
    "health-check-fails": (
        tar_gz(app_files("1.1.0", exit_code=3)),
        INSTALL_FAILED,
        "health check failed",
    ),
}


@pytest.mark.parametrize(("archive", "code", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_archives_and_failing_health_checks_roll_back(
    deployment: Deployment,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    archive: bytes,
    code: int,
    message: str,
) -> None:
    slug = "evil-" + request.node.callspec.id.replace("_", "-")[:40]
    good = tar_gz(app_files("1.0.0"))
    key = publish_product(deployment, tmp_path, slug, good, archive)
    inst = make_installation(
        tmp_path,
        deployment,
        "initech",
        version="1.0.0",
        product=slug,
        archive=good,
        license_key=key,
    )
    result = inst.agent("update")
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert inst.current_version() == "1.0.0"
    assert inst.runs() == "acme-erp 1.0.0"
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/vigor-absolute-escape").exists()


def test_escaping_symlink_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        body = b"#!/bin/sh\necho acme-erp 1.1.0\n"
        info = tarfile.TarInfo("bin/acme-erp")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("etc-passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(link)
    good = tar_gz(app_files("1.0.0"))
    key = publish_product(deployment, tmp_path, "evil-symlink", good, raw.getvalue())
    inst = make_installation(
        tmp_path,
        deployment,
        "initech",
        version="1.0.0",
        product="evil-symlink",
        archive=good,
        license_key=key,
    )
    result = inst.agent("update")
    assert result.returncode == INSTALL_FAILED
    assert "escapes the installation" in result.stderr
    assert inst.runs() == "acme-erp 1.0.0"


# --------------------------------------------------------------------------- kill -9 during apply


@pytest.mark.parametrize("step", ["extracting", "extracted", "switched", "healthy"])
def test_kill_9_during_apply_leaves_a_runnable_version_and_the_next_run_cleans_up(
    deployment: Deployment, tmp_path: Path, step: str
) -> None:
    # A product of its own: interrupted applies are reported, and enough of them halt a rollout.
    good = tar_gz(app_files("1.0.0"))
    key = publish_product(deployment, tmp_path, f"crash-{step}", good, tar_gz(app_files("1.1.0")))
    inst = make_installation(
        tmp_path,
        deployment,
        "initech",
        version="1.0.0",
        product=f"crash-{step}",
        archive=good,
        license_key=key,
    )
    killed = inst.agent("update", env={"VIGOR_AGENT_TEST_CRASH_AT": step})
    assert killed.returncode == -9
    assert inst.runs() in {"acme-erp 1.0.0", "acme-erp 1.1.0"}
    if step in {"extracting", "extracted"}:
        assert inst.current_version() == "1.0.0"
    result = inst.agent("update")
    assert result.returncode == APPLIED, (result.stdout, result.stderr)
    assert inst.runs() == "acme-erp 1.1.0"
    assert not list((tmp_path / "app" / "versions").glob(".staging-*"))
    assert not (tmp_path / "state" / "apply-journal.json").exists()
    assert not list((tmp_path / "app").glob(".current-*"))


def test_when_due_postpones_a_minor_security_revision_until_its_deadline(
    deployment: Deployment, tmp_path: Path
) -> None:
    good = tar_gz(app_files("1.0.0"))
    key = publish_product(
        deployment,
        tmp_path,
        "due-later",
        good,
        tar_gz(app_files("1.1.0")),
        "--kind",
        "security",
        "--severity",
        "minor",
    )
    inst = make_installation(
        tmp_path,
        deployment,
        "initech",
        version="1.0.0",
        product="due-later",
        archive=good,
        license_key=key,
    )
    waiting = inst.agent("update", "--when-due", "--json")
    assert waiting.returncode == AVAILABLE, waiting.stderr
    update = json.loads(waiting.stdout)["update"]
    assert update["severity"] == "minor"
    assert update["due"] is False
    assert inst.current_version() == "1.0.0"
    now = inst.agent("update")  # without --when-due it is applied at once
    assert now.returncode == APPLIED
    assert inst.runs() == "acme-erp 1.1.0"
