"""Root changes seen by a real agent: a rotated root is walked and trusted; an expired one is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.bootstrap import write_root
from server.config import Settings, read_secret_file
from server.domain.models import utcnow
from server.keyring import load_key_file
from server.services import Services
from tests.e2e.conftest import Deployment, make_installation, start_deployment


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Deployment]:
    (tmp_path / "server").mkdir()
    deployed, proxy, server = start_deployment(tmp_path / "server")
    yield deployed
    proxy.stop()
    server.stop()


def test_rotated_root_is_walked_and_trusted(fresh: Deployment, tmp_path: Path) -> None:
    keys = fresh.server.base / "instance" / "keys"
    new_root = tmp_path / "root-2.pem"
    assert fresh.server.vigor("keys", "create-root", str(new_root)).returncode == 0
    rotated = fresh.server.vigor(
        "keys", "write-root", "--root-key", str(keys / "root.pem"), "--new-root-key", str(new_root)
    )
    assert rotated.returncode == 0, rotated.stderr
    inst = make_installation(tmp_path / "client", fresh, "initech")
    result = inst.agent("update")
    assert result.returncode == 10, result.stderr
    assert inst.runs() == "acme-erp 5.0.1"
    assert sorted(p.name for p in (tmp_path / "client" / "state" / "root").iterdir()) == [
        "1.json",
        "2.json",
    ]


def test_expired_root_is_refused_and_nothing_changes(fresh: Deployment, tmp_path: Path) -> None:
    base = fresh.server.base
    settings = Settings(
        instance_dir=base / "instance",
        storage_root=base / "releases",
        keys_dir=base / "instance" / "keys",
        secret_key=read_secret_file(base / "instance"),
    )
    services = Services.from_settings(settings)
    try:
        # Root 2, properly signed by root 1's key, that expired yesterday (a vendor let it lapse).
        root = write_root(
            services, old_signers=[load_key_file(settings.keys_dir / "root.pem")], expires_days=-1
        )
    finally:
        services.db.dispose()
    assert root.expires < utcnow()
    inst = make_installation(tmp_path / "client", fresh, "initech")
    result = inst.agent("update")
    assert result.returncode == 20, (result.stdout, result.stderr)
    assert f"expired on {root.expires:%Y-%m-%d}" in result.stderr
    assert inst.runs() == "acme-erp 4.0.0"
