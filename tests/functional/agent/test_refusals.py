"""The refusal suite: every way the network, the server or an artifact can be wrong.

Each case ends the same way for the user: one line on stderr with a documented exit code, and
the installed application unchanged and runnable (``current`` still on 1.0.0, its health command
still runs, nothing half-done left behind).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.common.agent_sim import (
    AgentSim,
    Installation,
    app_files,
    now,
    tar_gz,
    zip_archive,
)
from tests.functional.agent.conftest import (
    INSTALL_FAILED,
    LICENSE,
    NETWORK,
    REFUSED,
    assert_unchanged,
)

Setup = Callable[[AgentSim, Installation], None]


def fault(*names: str) -> Setup:
    def setup(sim: AgentSim, inst: Installation) -> None:
        sim.faults.update(names)

    return setup


def offer(version: str, **facts: Any) -> Setup:
    """Publish ``version`` (with ``facts``) and offer it whatever the rules say."""

    def setup(sim: AgentSim, inst: Installation) -> None:
        if version not in sim.releases or facts:
            sim.publish(version, **facts)
        sim.force_offer = version

    return setup


def hostile(archive: bytes) -> Setup:
    """The update 1.1.0 is ``archive``, properly signed: the archive itself is the attack."""

    def setup(sim: AgentSim, inst: Installation) -> None:
        sim.publish("1.1.0", archive=archive)

    return setup


def limits(text: str) -> Setup:
    def setup(sim: AgentSim, inst: Installation) -> None:
        inst.config.write_text(inst.config.read_text() + text + "\n")

    return setup


def edit_check(change: Callable[[dict[str, Any]], None]) -> Setup:
    """Edit the check response before the sim signs it (a compromised check key)."""

    def setup(sim: AgentSim, inst: Installation) -> None:
        sim.check_hook = change

    return setup


def forge_manifest_hash(signed: dict[str, Any]) -> None:
    artifacts = signed["update"]["manifest"]["signed"]["artifacts"]
    artifacts["linux-x86_64"]["sha256"] = "0" * 64


def manifest_signed_by_check_key(sim: AgentSim, inst: Installation) -> None:
    sim.manifest_keys = [sim.check_key]
    sim.publish("1.1.0")


def expired_root(sim: AgentSim, inst: Installation) -> None:
    sim.add_root(expires=now() - timedelta(days=2))


def root_not_signed_by_previous(sim: AgentSim, inst: Installation) -> None:
    sim.add_root(expires=now() + timedelta(days=90), new_root_key=True, signed_by_previous=False)


def unreachable(sim: AgentSim, inst: Installation) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inst.config.write_text(inst.config.read_text().replace(sim.url, f"http://127.0.0.1:{port}"))


APP = app_files("1.1.0")

REFUSALS: dict[str, tuple[Setup, int, str]] = {
    # --- the bytes of the artifact
    "flipped-byte": (fault("flip-byte"), REFUSED, "SHA-256"),
    "truncated-artifact": (fault("truncate"), NETWORK, "ended early"),
    "endless-body": (fault("endless"), REFUSED, "more than the manifest"),
    "content-length-beyond-manifest": (fault("announce-more"), REFUSED, "announces"),
    "content-encoding-gzip": (fault("gzip"), REFUSED, "Content-Encoding"),
    "download-url-not-http": (fault("file-url"), REFUSED, "non-HTTP URL"),
    # --- the check response
    "bad-signature": (fault("bad-signature"), REFUSED, "not signed"),
    "missing-signature": (fault("no-signature"), REFUSED, "not signed"),
    "key-root-does-not-name": (fault("unknown-key"), REFUSED, "not signed"),
    "replayed-nonce": (fault("wrong-nonce"), REFUSED, "nonce"),
    "other-installation": (fault("wrong-installation"), REFUSED, "another installation"),
    "stale-check-response": (fault("expired-check"), REFUSED, "check response expired"),
    "offer-and-manifest-disagree": (
        edit_check(lambda s: s["update"].update(version="9.9.9")),
        REFUSED,
        "offer names",
    ),
    "forged-manifest-under-a-valid-check": (edit_check(forge_manifest_hash), REFUSED, "not signed"),
    "manifest-signed-by-the-check-key": (manifest_signed_by_check_key, REFUSED, "not signed"),
    # --- the release offered
    "downgrade-offer": (offer("0.9.0"), REFUSED, "not newer"),
    "same-version-offer": (offer("1.0.0"), REFUSED, "not newer"),
    "manifest-for-another-product": (offer("1.2.0", product="other-app"), REFUSED, "'other-app'"),
    "manifest-for-another-platform": (
        offer("1.2.0", platform="windows-x86_64"),
        REFUSED,
        "no artifact for linux-x86_64",
    ),
    "min-from-not-met": (offer("1.2.0", min_from="1.1.0"), REFUSED, "only be installed over 1.1.0"),
    # --- trust
    "expired-root": (expired_root, REFUSED, "expired on"),
    "root-not-signed-by-the-previous-root": (
        root_not_signed_by_previous,
        REFUSED,
        "not signed by the keys of root 1",
    ),
    # --- the server
    "license-revoked": (fault("revoked"), LICENSE, "license_revoked"),
    "rate-limited": (fault("429"), NETWORK, "asked to wait"),
    "server-error": (fault("check-500"), NETWORK, "HTTP 500"),
    "answer-not-json": (fault("not-json"), NETWORK, "not JSON"),
    "oversized-answer": (fault("huge"), REFUSED, "more than 4194304 bytes"),
    "server-unreachable": (unreachable, NETWORK, "cannot connect to"),
    # --- the archive (signed, but hostile or broken) and the install
    "dot-dot-entry": (hostile(tar_gz({**APP, "../../escaped.txt": "x"})), INSTALL_FAILED, "unsafe"),
    "absolute-entry": (
        hostile(tar_gz({**APP, "/tmp/vigor-sim-absolute": "x"})),
        INSTALL_FAILED,
        "unsafe path",
    ),
    "escaping-symlink": (
        hostile(tar_gz(APP, symlinks={"passwd": "../../../../etc/passwd"})),
        INSTALL_FAILED,
        "escapes the installation",
    ),
    "absolute-symlink": (
        hostile(tar_gz(APP, symlinks={"passwd": "/etc/passwd"})),
        INSTALL_FAILED,
        "absolute path",
    ),
    "symlink-chain-escape": (
        hostile(tar_gz(APP, symlinks={"here": ".", "up": "here/.."})),
        INSTALL_FAILED,
        "escapes the installation",
    ),
    "write-through-symlink": (
        hostile(tar_gz(APP, symlinks={"lib": "bin"}, after={"lib/evil": "x"})),
        INSTALL_FAILED,
        "passes through a symlink",
    ),
    "hard-link": (
        hostile(tar_gz(APP, hardlinks={"bin/copy": "bin/app"})),
        INSTALL_FAILED,
        "hard links",
    ),
    "device-file": (hostile(tar_gz(APP, devices=["null"])), INSTALL_FAILED, "devices"),
    "zip-dot-dot-entry": (
        hostile(zip_archive({**APP, "../evil": "x"})),
        INSTALL_FAILED,
        "unsafe path",
    ),
    "zip-symlink": (
        hostile(zip_archive(APP, symlinks={"passwd": "/etc/passwd"})),
        INSTALL_FAILED,
        "zip symlinks",
    ),
    "not-an-archive": (hostile(b"\x1f\x8b but not gzip at all"), INSTALL_FAILED, "not a readable"),
    "health-check-fails": (
        hostile(tar_gz(app_files("1.1.0", exit_code=3))),
        INSTALL_FAILED,
        "health check failed (exit 3)",
    ),
    "health-check-hangs": (
        lambda sim, inst: (
            hostile(tar_gz({"bin/app": "#!/bin/sh\nsleep 10\n"}))(sim, inst),
            limits("health_check_seconds = 0.5")(sim, inst),
        ),
        INSTALL_FAILED,
        "ran longer than 0.5 s",
    ),
    "no-disk-space": (limits("free_space_margin = 1000000000000000"), INSTALL_FAILED, "free space"),
}


@pytest.mark.parametrize(("setup", "code", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusal_leaves_the_application_unchanged(
    sim: AgentSim, inst: Installation, setup: Setup, code: int, message: str
) -> None:
    setup(sim, inst)
    result = inst.cli("update")
    assert result.code == code, result
    assert message in result.stderr
    assert result.stderr.startswith("vigor-agent: ") and result.stderr.count("\n") == 1, (
        "one line, no traceback"
    )
    assert_unchanged(inst)
    assert sorted(p.name for p in (inst.app / "versions").iterdir()) == ["1.0.0"]
    assert not (inst.base / "escaped.txt").exists()
    assert not Path("/tmp/vigor-sim-absolute").exists()
    if code == INSTALL_FAILED and "free space" not in message:  # a staged apply is reported
        assert [r["outcome"] for r in sim.reports] in (["failure"], ["rolled_back"])


def test_a_refused_check_changes_nothing_on_disk_for_the_next_run(
    sim: AgentSim, inst: Installation
) -> None:
    sim.faults.add("bad-signature")
    assert inst.cli("update").code == REFUSED
    sim.faults.clear()
    result = inst.cli("update")
    assert result.code == 10, result
    assert inst.runs() == "app 1.1.0"


def test_health_check_failure_is_rolled_back_and_reported(
    sim: AgentSim, inst: Installation
) -> None:
    sim.publish("1.1.0", app_files("1.1.0", exit_code=3))
    result = inst.cli("update")
    assert result.code == INSTALL_FAILED
    assert "version 1.0.0 restored" in result.stderr
    assert_unchanged(inst)
    (report,) = sim.reports
    assert report["outcome"] == "rolled_back"
    assert report["code"] == "health_check_failed"
    assert report["version"] == "1.1.0" and report["from_version"] == "1.0.0"
