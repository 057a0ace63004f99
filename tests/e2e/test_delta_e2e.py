"""A minor update through a delta patch, end to end, and the fallback when a patch fails."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from tests.common.factories import tar_gz
from tests.e2e.conftest import Deployment, Installation, make_installation

APPLIED = 10
PAYLOAD = {f"lib/module_{i:03d}.py": f"# module {i}\n" + "x = 1\n" * 2000 for i in range(40)}
PAYLOAD["share/data.bin"] = os.urandom(
    256 * 1024
).hex()  # incompressible, unchanged between versions


def app(version: str) -> bytes:
    return tar_gz(
        {"bin/acme-erp": f"#!/bin/sh\necho acme-erp {version}\n", "VERSION": version, **PAYLOAD}
    )


def publish(deployment: Deployment, tmp_path: Path, product: str, version: str) -> str:
    path = tmp_path / f"{product}-{version}.tar.gz"
    path.write_bytes(app(version))
    result = deployment.server.vigor(
        "release",
        "publish",
        "--product",
        product,
        "--version",
        version,
        "--kind",
        "update",
        "--file",
        f"any={path}",
    )
    assert result.returncode == 0, result.stderr
    # The publish queued the job that makes its patches; the worker's runner runs it here
    # (tests/e2e/test_worker_e2e.py runs it in a real `vigor worker`).
    jobs = deployment.server.vigor("jobs", "run-due")
    assert jobs.returncode == 0, jobs.stderr
    return result.stdout + jobs.stdout


def setup_product(deployment: Deployment, tmp_path: Path, product: str) -> Installation:
    vigor = deployment.server.vigor
    assert vigor("product", "add", product).returncode == 0
    publish(deployment, tmp_path, product, "1.0.0")
    publish(deployment, tmp_path, product, "1.1.0")
    assert (
        vigor(
            "contract",
            "add",
            "--customer",
            "initech",
            "--product",
            product,
            "--from",
            "2020-01-01",
            "--to",
            "2099-12-31",
        ).returncode
        == 0
    )
    key = (
        vigor("license", "issue", "--customer", "initech", "--product", product)
        .stdout.strip()
        .splitlines()[0]
    )
    inst = make_installation(
        tmp_path,
        deployment,
        "initech",
        version="1.0.0",
        product=product,
        archive=app("1.0.0"),
        license_key=key,
    )
    first = inst.agent("update")  # a full download: its artifact is kept for the next patch
    assert first.returncode == APPLIED, first.stderr
    assert "patch" not in first.stdout
    return inst


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_minor_update_through_a_patch_is_byte_identical(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = setup_product(deployment, tmp_path, "delta-app")
    published = publish(deployment, tmp_path, "delta-app", "1.2.0")
    assert "queued for the worker" in published and "ran 0 job(s)" not in published
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    assert "patch of" in result.stdout, result.stdout
    patch_bytes = int(result.stdout.split("patch of ")[1].split(" ")[0])
    full = len(app("1.2.0"))
    assert patch_bytes < full * 0.1, f"{patch_bytes} of {full}"
    assert inst.runs() == "acme-erp 1.2.0"
    expected = tmp_path / "expected"
    with tarfile.open(fileobj=io.BytesIO(app("1.2.0"))) as tar:
        tar.extractall(expected, filter="data")
    assert tree(inst.current) == tree(expected)


def test_a_corrupted_patch_falls_back_to_the_full_download_and_is_not_tried_again(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = setup_product(deployment, tmp_path, "delta-fallback")
    publish(deployment, tmp_path, "delta-fallback", "1.2.0")
    deployment.proxy.mode = "flip-patch"
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    assert "patch of" not in result.stdout
    assert inst.runs() == "acme-erp 1.2.0"
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert len(state["failed_patches"]) == 1
