"""A network attacker between a real agent and a real server: it cannot freeze, stall or steer.

Each attack goes through the tampering proxy (tests/common/live.py): trickled answers, rewritten
requests, another customer's license. Each ends with the agent refusing within its documented
deadline (plus a few seconds), the installation unchanged and runnable, and a normal update
succeeding afterwards through the honest proxy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, Installation, make_installation

REFUSED, LICENSE, NETWORK, APPLIED = 20, 21, 30, 10

# Short limits so that every attack takes seconds (docs/agent.md names them and their defaults).
DEADLINE = 3.0
LIMITS: dict[str, float] = {
    "network_timeout": 2.0,
    "document_seconds": DEADLINE,
    "download_total_seconds": DEADLINE,
    "download_min_rate": 1e9,  # the demo artifacts are small: the fixed deadline governs
    "download_stall_seconds": 2.0,
    "download_attempts": 2,
    "first_backoff_seconds": 0.1,
}
SLACK = 5.0  # Python's start, the honest exchanges before the attacked one

Attack = Callable[[Deployment], None]


def trickle(prefix: str) -> Attack:
    def attack(deployment: Deployment) -> None:
        deployment.proxy.trickle = prefix

    return attack


def rewrite(**changes: str) -> Attack:
    def attack(deployment: Deployment) -> None:
        deployment.proxy.request_hook = lambda body: {**body, **changes}

    return attack


def another_license(prefix: str) -> Attack:
    def attack(deployment: Deployment) -> None:
        # Hooli's license is valid and lapsed: the server answers it, for this nonce.
        deployment.proxy.replace_license = (prefix, deployment.licenses["hooli"])

    return attack


ATTACKS: dict[str, tuple[Attack, int, str]] = {
    "trickled-check-answer": (
        trickle("/api/v1/check"),
        NETWORK,
        "POST /api/v1/check failed: timed out while reading from 127.0.0.1:",
    ),
    "trickled-root-file": (
        trickle("/api/v1/root/"),
        NETWORK,
        "GET /api/v1/root/2.json failed: timed out while reading from 127.0.0.1:",
    ),
    "trickled-download": (trickle("/api/v1/download/"), NETWORK, "did not finish within 3 s"),
    "version-rewritten-to-freeze": (
        rewrite(version="5.0.1"),
        REFUSED,
        "the update server's answer is for installed version '5.0.1', not '4.0.0' (refused)",
    ),
    "channel-rewritten-to-steer": (
        rewrite(channel="beta"),
        REFUSED,
        "the update server's answer is for channel 'beta', not 'stable' (refused)",
    ),
    "another-customer-s-license-on-the-check": (
        another_license("/api/v1/check"),
        REFUSED,
        "the update server's answer is for another license",
    ),
    "another-customer-s-license-on-the-download": (
        another_license("/api/v1/download/"),
        LICENSE,
        "download_wrong_license",
    ),
}


def unchanged(inst: Installation, tmp_path: Path) -> None:
    assert inst.current_version() == "4.0.0"
    assert inst.runs() == "acme-erp 4.0.0"
    assert not list((tmp_path / "app" / "versions").glob(".staging-*"))
    assert sorted(p.name for p in (tmp_path / "app" / "versions").iterdir()) == ["4.0.0"]


@pytest.mark.parametrize(("attack", "code", "message"), ATTACKS.values(), ids=ATTACKS.keys())
def test_an_attack_on_the_network_path_is_refused_in_time_and_changes_nothing(
    deployment: Deployment, tmp_path: Path, attack: Attack, code: int, message: str
) -> None:
    inst = make_installation(tmp_path, deployment, "initech", limits=LIMITS)
    attack(deployment)
    started = time.monotonic()
    result = inst.agent("update")
    elapsed = time.monotonic() - started
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, "one line, no traceback"
    assert elapsed < DEADLINE + SLACK, f"held for {elapsed:.1f} s"
    unchanged(inst, tmp_path)

    honest(deployment)
    again = inst.agent("update")
    assert again.returncode == APPLIED, again.stderr
    assert inst.current_version() == "5.0.1"
    assert inst.runs() == "acme-erp 5.0.1"


def honest(deployment: Deployment) -> None:
    proxy: Any = deployment.proxy
    proxy.trickle = proxy.request_hook = proxy.replace_license = None
