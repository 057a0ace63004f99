"""Root changes seen by a real agent: a rotated root is walked and trusted; an expired one is not."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.bootstrap import write_root
from server.config import Settings, read_secret_file
from server.domain import roots
from server.domain.models import utcnow
from server.domain.trust import build_root, sign_document
from server.keyring import create_key_file, load_key_file
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


def _settings(base: Path) -> Settings:
    return Settings(
        instance_dir=base / "instance",
        storage_root=base / "releases",
        keys_dir=base / "instance" / "keys",
    )


@pytest.fixture
def older_instance(tmp_path: Path) -> Iterator[Deployment]:
    """An instance set up as `vigor init` did before the roles had keys of their own: root 1
    names one online key for both release and check. Its agents ship with that root."""
    base = tmp_path / "server"
    settings = _settings(base)
    services = Services.from_settings(settings)
    try:
        services.db.upgrade()
        root_key = create_key_file(settings.keys_dir / "root.pem")
        online = services.keyring.create()
        signed = build_root(
            1, utcnow() + timedelta(days=365), [root_key.public], [online.public], [online.public]
        )
        with services.db.session() as session:
            roots.store_root(session, sign_document(signed, [root_key]))
    finally:
        services.db.dispose()
    deployed, proxy, server = start_deployment(base)
    yield deployed
    proxy.stop()
    server.stop()


def test_an_older_instance_separates_its_roles_and_its_agents_keep_updating(
    older_instance: Deployment, tmp_path: Path
) -> None:
    shipped = json.loads(older_instance.root_file.read_text())["signed"]["roles"]
    assert shipped["release"]["keyids"] == shipped["check"]["keyids"], "one key for both"
    inst = make_installation(tmp_path / "client", older_instance, "initech")
    before = inst.agent("check")
    assert before.returncode == 11, before.stderr  # the old root's agents update as they did

    keys = older_instance.server.base / "instance" / "keys"
    separated = older_instance.server.vigor(
        "keys", "separate-roles", "--root-key", str(keys / "root.pem")
    )
    assert separated.returncode == 0, separated.stderr
    assert "root version 2 names check key" in separated.stdout
    # A running server re-reads the newest root within its cache lifetime (services.py).
    time.sleep(Services.root_ttl_seconds + 0.5)

    result = inst.agent("update")
    assert result.returncode == 10, (result.stdout, result.stderr)
    assert inst.runs() == "acme-erp 5.0.1"
    stored = tmp_path / "client" / "state" / "root"
    assert sorted(p.name for p in stored.iterdir()) == ["1.json", "2.json"]
    roles = json.loads((stored / "2.json").read_text())["signed"]["roles"]
    assert roles["release"]["keyids"] == shipped["release"]["keyids"]
    assert set(roles["check"]["keyids"]).isdisjoint(roles["release"]["keyids"])
