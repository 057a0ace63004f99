"""Offline bundles: exported by the server CLI, imported by an agent whose server is unreachable.

No server process runs in this module: the agent's server URL points at a closed port, so any
network call would fail the import.
"""

from __future__ import annotations

import json
import socket
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client_agent import Agent, load_config
from client_agent.bundle import import_bundle
from client_agent.errors import ExpiredRootError, VerificationError
from tests.common.live import LiveServer
from tests.e2e.conftest import Deployment, Installation, make_installation

APPLIED, REFUSED = 10, 20


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    base = tmp_path_factory.mktemp("vigor-offline")
    server = LiveServer(base, public_url="http://127.0.0.1:9")
    assert server.vigor("demo", "--no-serve").returncode == 0
    root_file = base / "root.json"
    assert server.vigor("keys", "export-root", "--out", str(root_file)).returncode == 0
    licenses = json.loads((base / "instance" / "demo-licenses.json").read_text())
    return Deployment(server, None, licenses, root_file)  # type: ignore[arg-type]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def export(offline: Deployment, customer: str, out: Path, *extra: str) -> Path:
    result = offline.server.vigor(
        "bundle",
        "export",
        "--license",
        offline.licenses[customer],
        "--since",
        "4.0.0",
        "--out",
        str(out),
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return out


def installation(offline: Deployment, tmp_path: Path, customer: str = "initech") -> Installation:
    return make_installation(tmp_path, offline, customer, server_url=closed_port_url())


def test_bundle_updates_an_installation_with_no_network(
    offline: Deployment, tmp_path: Path
) -> None:
    bundle = export(offline, "initech", tmp_path / "initech.vgb")
    inst = installation(offline, tmp_path)
    result = inst.agent("import", str(bundle))
    assert result.returncode == APPLIED, result.stderr
    assert inst.runs() == "acme-erp 5.0.1"
    pending = json.loads((tmp_path / "state" / "reports.json").read_text())
    assert [r["outcome"] for r in pending] == ["success"], "queued for the next online run"


def test_lapsed_bundle_holds_nothing_past_the_cutoff(offline: Deployment, tmp_path: Path) -> None:
    bundle = export(offline, "hooli", tmp_path / "hooli.vgb")
    with tarfile.open(bundle) as tar:
        manifests = sorted(m.name for m in tar.getmembers() if m.name.startswith("manifests/"))
        statement = json.loads(tar.extractfile("bundle.json").read())["signed"]  # type: ignore[union-attr]
    assert manifests == ["manifests/4.0.1.json", "manifests/4.1.0.json", "manifests/4.1.1.json"]
    assert statement["entitlement"]["status"] == "lapsed"
    inst = installation(offline, tmp_path, "hooli")
    result = inst.agent("import", str(bundle))
    assert result.returncode == APPLIED, result.stderr
    assert inst.runs() == "acme-erp 4.1.1"


@pytest.fixture(scope="module")
def pristine(offline: Deployment, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return export(offline, "initech", tmp_path_factory.mktemp("pristine") / "b.vgb").read_bytes()


def positions(size: int) -> list[int]:
    """Bytes across every region: headers, JSON, artifacts, padding, the statement, the end."""
    return sorted(
        {
            0,
            100,
            156,
            512,
            700,
            1100,
            2048,
            5000,
            size // 3,
            size // 2,
            size - 3000,
            size - 1500,
            size - 1100,
            size - 600,
            size - 1,
        }
    )


@pytest.mark.parametrize("index", range(15))
def test_one_changed_byte_anywhere_is_refused(
    offline: Deployment, tmp_path: Path, pristine: bytes, index: int
) -> None:
    where = positions(len(pristine))[index]
    data = bytearray(pristine)
    data[where] ^= 0x20
    bundle = tmp_path / "tampered.vgb"
    bundle.write_bytes(bytes(data))
    inst = installation(offline, tmp_path)
    result = inst.agent("import", str(bundle))
    assert result.returncode == REFUSED, (where, result.stdout, result.stderr)
    assert inst.runs() == "acme-erp 4.0.0"


def test_bundle_for_another_license_or_product_is_refused(
    offline: Deployment, tmp_path: Path
) -> None:
    umbrella = export(offline, "umbrella", tmp_path / "umbrella.vgb")
    inst = installation(offline, tmp_path)
    result = inst.agent("import", str(umbrella))
    assert result.returncode == REFUSED
    assert "another license" in result.stderr
    config = inst.config.read_text().replace('product = "acme-erp"', 'product = "other-app"')
    inst.config.write_text(config)
    other = inst.agent("import", str(export(offline, "initech", tmp_path / "initech.vgb")))
    assert other.returncode == REFUSED
    assert inst.runs() == "acme-erp 4.0.0"


def test_bundle_for_another_channel_is_refused_and_a_stable_one_serves_every_channel(
    offline: Deployment, tmp_path: Path
) -> None:
    beta = export(offline, "initech", tmp_path / "beta.vgb", "--channel", "beta")
    inst = installation(offline, tmp_path)  # on the stable channel
    refused = inst.agent("import", str(beta))
    assert refused.returncode == REFUSED
    assert "this bundle is for channel 'beta', not 'stable'" in refused.stderr
    assert inst.runs() == "acme-erp 4.0.0"
    config = inst.config.read_text().replace(
        'product = "acme-erp"', 'product = "acme-erp"\nchannel = "beta"'
    )
    inst.config.write_text(config)
    stable = export(offline, "initech", tmp_path / "stable.vgb")
    applied = inst.agent("import", str(stable))
    assert applied.returncode == APPLIED, applied.stderr
    assert inst.runs() == "acme-erp 5.0.1"


def agent_at(inst: Installation, when: datetime) -> Agent:
    return Agent(load_config(inst.config), clock=lambda: when)


def test_clock_in_1970_is_judged_by_the_bundle_s_signed_time(
    offline: Deployment, tmp_path: Path
) -> None:
    bundle = export(offline, "initech", tmp_path / "initech.vgb")
    inst = installation(offline, tmp_path)
    result = import_bundle(agent_at(inst, datetime(1970, 1, 2, tzinfo=UTC)), bundle)
    assert result.outcome.applied
    assert result.clock_note is not None and "cannot be right" in result.clock_note
    assert inst.runs() == "acme-erp 5.0.1"


def test_clock_in_2040_finds_the_bundle_expired_and_changes_nothing(
    offline: Deployment, tmp_path: Path
) -> None:
    bundle = export(offline, "initech", tmp_path / "initech.vgb")
    inst = installation(offline, tmp_path)
    with pytest.raises(ExpiredRootError, match="far ahead"):
        import_bundle(agent_at(inst, datetime(2040, 1, 1, tzinfo=UTC)), bundle)
    assert inst.runs() == "acme-erp 4.0.0"


def test_not_a_bundle(offline: Deployment, tmp_path: Path) -> None:
    junk = tmp_path / "junk.vgb"
    junk.write_bytes(b"not a tar file at all")
    inst = installation(offline, tmp_path)
    with pytest.raises(VerificationError, match="not a Vigor bundle"):
        import_bundle(agent_at(inst, datetime.now(UTC)), junk)


def test_status_file_carried_back_is_imported_once_and_pinned_to_the_installation(
    offline: Deployment, tmp_path: Path
) -> None:
    inst = installation(offline, tmp_path)
    assert (
        inst.agent("import", str(export(offline, "initech", tmp_path / "b.vgb"))).returncode
        == APPLIED
    )
    status = tmp_path / "status.json"
    exported = inst.agent("status", "--export", str(status))
    assert exported.returncode == 0, exported.stderr
    imported = offline.server.vigor("installation", "import", str(status))
    assert imported.returncode == 0, imported.stderr
    assert "version 5.0.1, 1 report(s) recorded" in imported.stdout
    again = offline.server.vigor("installation", "import", str(status))
    assert again.returncode == 1
    assert "not newer" in again.stderr
    # A file for the same installation signed by another key is refused.
    document = json.loads(status.read_text())
    (tmp_path / "state" / "installation-key.pem").unlink()
    forged = inst.agent("status", "--export", str(tmp_path / "forged.json"))
    assert forged.returncode == 0
    refused = offline.server.vigor("installation", "import", str(tmp_path / "forged.json"))
    assert refused.returncode == 1
    assert "signs its status with another key" in refused.stderr
    document["signed"]["installed_version"] = "9.9.9"
    status.write_text(json.dumps(document))
    tampered = offline.server.vigor("installation", "import", str(status))
    assert tampered.returncode == 1
    assert "signature does not verify" in tampered.stderr


def test_bundle_downloaded_from_the_portal_updates_an_offline_machine(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The customer signs in to the portal, downloads a bundle, carries it to a machine with
    no network, and the agent installs from it."""
    import re

    import requests

    web = requests.Session()
    login = web.get(f"{deployment.server.url}/portal/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login)
    assert csrf
    signed_in = web.post(
        f"{deployment.server.url}/portal/login",
        data={"key": deployment.licenses["initech"], "csrf_token": csrf.group(1)},
        timeout=10,
    )
    assert signed_in.ok and "Offline installation" in signed_in.text
    with web.get(
        f"{deployment.server.url}/portal/bundle",
        params={"platform": "linux-x86_64", "since": "4.0.0"},
        timeout=60,
        stream=True,
    ) as response:
        assert response.status_code == 200, response.text[:300]
        assert "attachment" in response.headers["Content-Disposition"]
        bundle = tmp_path / "from-portal.vgb"
        with bundle.open("wb") as out:
            for chunk in response.iter_content(1 << 16):
                out.write(chunk)
    inst = make_installation(tmp_path, deployment, "initech", server_url=closed_port_url())
    result = inst.agent("import", str(bundle))
    assert result.returncode == APPLIED, result.stderr
    assert inst.runs() == "acme-erp 5.0.1"
