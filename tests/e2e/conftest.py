"""End-to-end fixtures: a demo server process behind a tampering proxy, and installations."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.demo import demo_archive
from tests.common.live import LiveServer, TamperingProxy


@dataclass
class Deployment:
    server: LiveServer
    proxy: TamperingProxy
    licenses: dict[str, str]
    root_file: Path


def start_deployment(base: Path) -> tuple[Deployment, TamperingProxy, LiveServer]:
    proxy = TamperingProxy()
    server = LiveServer(base, public_url=proxy.url)
    proxy.upstream = server.url
    result = server.vigor("demo", "--no-serve")
    assert result.returncode == 0, result.stderr
    root_file = base / "root.json"
    assert server.vigor("keys", "export-root", "--out", str(root_file)).returncode == 0
    licenses = json.loads((base / "instance" / "demo-licenses.json").read_text())
    server.start()
    proxy.start()
    return Deployment(server, proxy, licenses, root_file), proxy, server


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployed, proxy, server = start_deployment(tmp_path_factory.mktemp("vigor-e2e"))
    yield deployed
    proxy.stop()
    server.stop()


@pytest.fixture(autouse=True)
def honest_proxy(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "deployment" in request.fixturenames:
        proxy = request.getfixturevalue("deployment").proxy
        proxy.mode = None
        proxy.check_hook = None
        proxy.request_hook = None
        proxy.replace_license = None
        proxy.trickle = None
        proxy.recorded_check = None
        proxy.seen_headers.clear()


def extract(archive: bytes, target: Path) -> None:
    """What an installer would do: unpack a version (without a top-level ``<name>-<version>/``)."""
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            name = rest if rest and top.endswith(target.name) else member.name
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            dest.write_bytes(source.read())
            dest.chmod(member.mode)


@dataclass
class Installation:
    root: Path
    config: Path

    @property
    def current(self) -> Path:
        return self.root / "app" / "current"

    def current_version(self) -> str:
        return os.readlink(self.current).rsplit("/", 1)[-1]

    def runs(self) -> str:
        """What the installed application prints: proof it is complete and runnable."""
        out = subprocess.run(
            [str(self.current / "bin" / "acme-erp"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.current,
        )
        return out.stdout.strip()

    def agent(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "client_agent", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
            timeout=120,
        )


def make_installation(
    tmp: Path,
    deployment: Deployment,
    customer: str,
    version: str = "4.0.0",
    product: str = "acme-erp",
    archive: bytes | None = None,
    license_key: str | None = None,
    server_url: str | None = None,
    limits: dict[str, float] | None = None,
) -> Installation:
    app = tmp / "app"
    extract(archive or demo_archive(version), app / "versions" / version)
    (app / "current").symlink_to(Path("versions") / version)
    config = tmp / "agent.toml"
    config.write_text(
        f'server_url = "{server_url or deployment.proxy.url}"\n'
        f'license_key = "{license_key or deployment.licenses[customer]}"\n'
        f'product = "{product}"\n'
        'platform = "linux-x86_64"\n'
        'install_dir = "app"\n'
        'state_dir = "state"\n'
        f'trusted_root = "{deployment.root_file}"\n'
        'health_check = ["bin/acme-erp", "--version"]\n'
        + ("[limits]\n" + "".join(f"{k} = {v!r}\n" for k, v in limits.items()) if limits else "")
    )
    return Installation(tmp, config)
