"""The agent's CLI against the simulated update server (tests/common/agent_sim.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.common.agent_sim import AgentSim, Installation, make_installation

APPLIED, AVAILABLE, REFUSED, LICENSE, NETWORK, INSTALL_FAILED, BUSY = 10, 11, 20, 21, 30, 40, 50


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sim is on loopback: a proxy in the developer's environment must not get in between."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def sim() -> Iterator[AgentSim]:
    """A started sim with the app published at 1.0.0 (installed) and 1.1.0 (the update)."""
    with AgentSim() as server:
        server.publish("1.0.0")
        server.publish("1.1.0")
        yield server


@pytest.fixture
def inst(tmp_path: Path, sim: AgentSim) -> Installation:
    """Version 1.0.0 installed, its agent pointed at the sim."""
    return make_installation(tmp_path / "client", sim)


def assert_unchanged(inst: Installation, version: str = "1.0.0") -> None:
    """The outcome a user must see after any refusal or failure: nothing changed."""
    assert inst.current_version() == version
    assert inst.runs() == f"app {version}"
    assert inst.leftovers() == []
