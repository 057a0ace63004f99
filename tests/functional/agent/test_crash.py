"""kill -9 at every step of an update: `current` stays on a complete, runnable version, and the
next run cleans up and finishes the job.

The agent runs as a real process; ``VIGOR_AGENT_TEST_CRASH_AT=<step>`` makes it SIGKILL itself
at exactly that step (client_agent.files.crash_point), so the kill is deterministic.
"""

from __future__ import annotations

import pytest

from tests.common.agent_sim import AgentSim, Installation, app_files
from tests.functional.agent.conftest import APPLIED

# Steps in the order an update passes them; before "switched", current has not moved yet.
STEPS = ["downloading", "extracting", "extracted", "staged", "switched", "healthy"]
BEFORE_SWITCH = {"downloading", "extracting", "extracted", "staged"}


@pytest.fixture
def big_update(sim: AgentSim) -> None:
    """An update of a few MiB, so that a download is cut with part of it on disk."""
    sim.publish("1.1.0", app_files("1.1.0", padding=3 * 1024 * 1024))


@pytest.mark.usefixtures("big_update")
@pytest.mark.parametrize("step", STEPS)
def test_kill_9_leaves_a_runnable_version_and_the_next_run_finishes(
    sim: AgentSim, inst: Installation, step: str
) -> None:
    killed = inst.subprocess("update", env={"VIGOR_AGENT_TEST_CRASH_AT": step})
    assert killed.code == -9, killed
    assert inst.runs() in {"app 1.0.0", "app 1.1.0"}
    if step in BEFORE_SWITCH:
        assert inst.current_version() == "1.0.0"
    result = inst.subprocess("update")
    assert result.code == APPLIED, result
    assert inst.current_version() == "1.1.0"
    assert inst.runs() == "app 1.1.0"
    assert inst.leftovers() == []
    assert not list((inst.state / "downloads").glob("*.part"))
    outcomes = [(r["outcome"], r["code"]) for r in sim.reports]
    if step == "switched":  # switched but never confirmed healthy: undone, said so, redone
        assert outcomes == [("rolled_back", "interrupted"), ("success", None)]
    else:
        assert outcomes == [("success", None)]


@pytest.mark.usefixtures("big_update")
def test_a_download_killed_midway_resumes_where_it_stopped(
    sim: AgentSim, inst: Installation
) -> None:
    inst.subprocess("update", env={"VIGOR_AGENT_TEST_CRASH_AT": "downloading"})
    (part,) = (inst.state / "downloads").glob("*.part")
    kept = part.stat().st_size
    assert 0 < kept < sim.releases["1.1.0"].size
    assert inst.subprocess("update").code == APPLIED
    resumed = sim.requests("/api/v1/download/")[-1].headers
    assert resumed["Range"] == f"bytes={kept}-"
    assert resumed["If-Range"] == f'"{sim.releases["1.1.0"].sha256}"'


def test_kill_9_during_a_rollback_keeps_a_runnable_version(
    sim: AgentSim, inst: Installation
) -> None:
    assert inst.subprocess("update").code == APPLIED
    killed = inst.subprocess("rollback", env={"VIGOR_AGENT_TEST_CRASH_AT": "switched"})
    assert killed.code == -9
    assert inst.runs() in {"app 1.0.0", "app 1.1.0"}
    status = inst.subprocess("verify")
    assert status.code == 0, status  # the next run put back the confirmed version
    assert inst.current_version() == "1.1.0"
    assert inst.leftovers() == []
