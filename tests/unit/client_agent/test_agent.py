"""The orchestrator through its seams: an in-memory network (a fake ``Fetcher``) and a clock.

The fake answers with documents signed by keys made here (tests/common/agent_sim.py helpers);
nothing from the server is imported.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from client_agent import Agent, AgentConfig, DownloadError, InstallError, JsonReply
from client_agent.errors import ArtifactError, DownloadExpiredError, RateLimitedError
from client_agent.reports import ReportQueue
from tests.common.agent_sim import Key, app_files, iso, root_signed, sign, tar_gz

ROOT, ONLINE = Key(), Key()
ARTIFACT = tar_gz(app_files("2.0.0"))
SHA = hashlib.sha256(ARTIFACT).hexdigest()
START = datetime(2026, 11, 25, 12, tzinfo=UTC)


class FakeNetwork:
    """The ``Fetcher`` seam in memory: signed offers of 2.0.0, scripted failures, a record."""

    def __init__(self) -> None:
        self.checks: list[Mapping[str, Any]] = []
        self.reports: list[Mapping[str, Any]] = []
        self.downloads: list[str] = []
        self.busy_for: float | None = None  # answer checks with 429 and this Retry-After
        self.expired_links: set[str] = set()
        self.report_error: Exception | None = None
        self.clock: Callable[[], datetime] = lambda: START

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        return None  # no root newer than the shipped one

    def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str], max_bytes: int
    ) -> JsonReply:
        assert headers["Authorization"] == "License vgl_x"
        if url.endswith("/report"):
            if self.report_error is not None:
                raise self.report_error
            self.reports.append(body)
            return JsonReply(202, {"recorded": True})
        if self.busy_for is not None:
            raise RateLimitedError("the server is busy", self.busy_for)
        self.checks.append(body)
        return JsonReply(200, sign(self._check(body), [ONLINE]))

    def _check(self, body: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        manifest = {
            "type": "release",
            "product": "acme-erp",
            "version": "2.0.0",
            "kind": "update",
            "severity": None,
            "channel": "stable",
            "published_at": iso(now - timedelta(days=1)),
            "min_from": None,
            "artifacts": {"any": {"filename": "a.tar.gz", "size": len(ARTIFACT), "sha256": SHA}},
        }
        return {
            "type": "check",
            "nonce": body["nonce"],
            "installation_id": body["installation_id"],
            "product": "acme-erp",
            "platform": body["platform"],
            "channel": body["channel"],
            "installed_version": body["version"],
            "license_fingerprint": hashlib.sha256(b"vgl_x").hexdigest(),
            "issued_at": iso(now),
            "expires_at": iso(now + timedelta(hours=1)),
            "entitlement": {"status": "active"},
            "update": {
                "version": "2.0.0",
                "manifest": sign(manifest, [ONLINE]),
                "download": {"url": f"https://updates.invalid/d/{len(self.checks)}"},
                "apply_by": None,
            },
        }

    def download(
        self,
        url: str,
        part: Path,
        size: int,
        etag: str,
        progress: Callable[[int], None] | None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        self.downloads.append(url)
        if url in self.expired_links:
            raise DownloadExpiredError("expired")
        part.write_bytes(ARTIFACT)
        return hashlib.sha256(ARTIFACT).hexdigest()


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    root = sign(
        root_signed(1, datetime(2099, 1, 1, tzinfo=UTC), [ROOT], [ONLINE], [ONLINE]), [ROOT]
    )
    (tmp_path / "root.json").write_text(json.dumps(root))
    return AgentConfig(
        server_url="https://updates.invalid",
        license_key="vgl_x",
        product="acme-erp",
        install_dir=tmp_path / "app",
        state_dir=tmp_path / "state",
        trusted_root=tmp_path / "root.json",
        installed_version="1.0.0",
        check_interval=3600,
    )


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


def agent_at(config: AgentConfig, network: FakeNetwork, when: datetime) -> Agent:
    network.clock = lambda: when
    return Agent(config, fetcher=network, clock=lambda: when)


def test_an_expired_link_is_replaced_by_checking_again(
    config: AgentConfig, network: FakeNetwork
) -> None:
    network.expired_links.add("https://updates.invalid/d/1")
    agent = agent_at(config, network, START)
    path = agent.download(agent.check())
    assert path.read_bytes() == ARTIFACT
    assert network.downloads == ["https://updates.invalid/d/1", "https://updates.invalid/d/2"]
    assert len(network.checks) == 2


def test_not_enough_disk_space_is_refused_before_downloading(
    config: AgentConfig, network: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = agent_at(config, network, START)
    answer = agent.check()
    usage = shutil._ntuple_diskusage(10**9, 10**9 - 100, 100)  # type: ignore[attr-defined]
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    with pytest.raises(InstallError, match="not enough free space"):
        agent.download(answer)
    assert network.downloads == []


def test_each_check_carries_a_fresh_nonce_and_the_same_installation_id(
    config: AgentConfig, network: FakeNetwork
) -> None:
    agent_at(config, network, START).check()
    agent_at(config, network, START).check()
    first, second = network.checks
    assert first["nonce"] != second["nonce"]
    assert all(re.fullmatch(r"[0-9a-f]{16,128}", c["nonce"]) for c in network.checks)
    assert first["installation_id"] == second["installation_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", first["installation_id"])
    assert first["version"] == "1.0.0" and first["channel"] == "stable"


def test_retry_after_is_obeyed_across_runs(config: AgentConfig, network: FakeNetwork) -> None:
    network.busy_for = 120.0
    with pytest.raises(DownloadError, match="asked to wait"):
        agent_at(config, network, START).check()
    later = agent_at(config, network, START + timedelta(seconds=60))
    with pytest.raises(DownloadError, match="not to be contacted before"):
        later.check()
    assert later.next_check_delay() >= 60
    network.busy_for = None
    assert network.checks == []
    after = agent_at(config, network, START + timedelta(seconds=200))
    assert after.check().manifest is not None
    assert after.state.get("not_before") is None


def test_check_interval_has_jitter_within_bounds(config: AgentConfig, network: FakeNetwork) -> None:
    agent = agent_at(config, network, START)
    delays = {round(agent.next_check_delay()) for _ in range(50)}
    assert len(delays) > 1
    assert all(3240 <= d <= 3960 for d in delays)


def test_run_loop_sleeps_the_jittered_interval_and_reports_each_round(
    config: AgentConfig, network: FakeNetwork
) -> None:
    network.busy_for = 30.0
    agent = agent_at(config, network, START)
    results: list[Any] = []
    sleeps: list[float] = []
    agent.run_forever(results.append, sleep=sleeps.append, rounds=2)
    assert [type(r).__name__ for r in results] == ["DownloadError", "DownloadError"]
    assert len(sleeps) == 1 and 3240 <= sleeps[0] <= 3960


def test_a_tampered_download_is_refused_before_anything_is_installed(
    config: AgentConfig, network: FakeNetwork
) -> None:
    agent = agent_at(config, network, START)
    answer = agent.check()
    path = agent.download(answer)
    path.write_bytes(ARTIFACT[:-1] + bytes([ARTIFACT[-1] ^ 1]))
    assert answer.manifest is not None
    with pytest.raises(ArtifactError, match="SHA-256"):
        agent.apply(answer.manifest, path)
    assert not (config.install_dir / "versions").exists()


def test_a_downloaded_update_can_be_applied_days_later_without_the_network(
    config: AgentConfig, network: FakeNetwork
) -> None:
    agent = agent_at(config, network, START)
    agent.download(agent.check())
    later = agent_at(config, network, START + timedelta(days=3))  # the check answer expired
    pending = later.pending()
    assert pending is not None
    outcome = later.apply(*pending)
    assert outcome.applied and outcome.version == "2.0.0"
    assert (config.install_dir / "current" / "bin" / "app").exists()
    assert later.pending() is None


def test_report_queue_keeps_what_the_network_could_not_take(tmp_path: Path) -> None:
    network = FakeNetwork()
    queue = ReportQueue(tmp_path / "reports.json", max_pending=3)
    for n in range(5):
        queue.add({"n": n})
    assert [r["n"] for r in queue.pending()] == [2, 3, 4], "the oldest are dropped first"
    network.report_error = DownloadError("down")
    assert queue.flush(network, "https://x/report", {"Authorization": "License vgl_x"}) == 0
    assert len(queue.pending()) == 3
    network.report_error = DownloadError("malformed", status=400, retryable=False)
    assert queue.flush(network, "https://x/report", {"Authorization": "License vgl_x"}) == 0
    assert queue.pending() == [], "a report the server rejects for good is not kept forever"
    network.report_error = None
    queue.add({"n": 9})
    assert queue.flush(network, "https://x/report", {"Authorization": "License vgl_x"}) == 1
    assert network.reports == [{"n": 9}]


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://updates.invalid/api/v1/download/t", True),
        ("https://updates.invalid:443/api/v1/download/t", True),  # the same origin, spelled out
        ("https://UPDATES.invalid/api/v1/download/t", True),
        ("http://updates.invalid/api/v1/download/t", False),  # another scheme
        ("https://updates.invalid:8443/api/v1/download/t", False),  # another port
        ("https://bucket.s3.invalid/blob?X-Amz-Signature=x", False),  # a storage host
        ("https://updates.invalid.evil.example/api/v1/download/t", False),
    ],
)
def test_the_license_goes_with_downloads_to_the_server_s_origin_only(
    config: AgentConfig, network: FakeNetwork, url: str, sent: bool
) -> None:
    headers = Agent(config, fetcher=network).auth_for(url)
    assert headers == ({"Authorization": "License vgl_x"} if sent else {})
