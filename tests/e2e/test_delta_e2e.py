"""A bug-fix update through a delta patch, end to end, through a byte-counting proxy, and the
fallback when a patch fails.

The application is generated: a tree of source-like files (words drawn with a fixed seed, so
they compress as text does), packed as a vendor would: a top folder named after the version and
every file's mtime set to the build time. The bug-fix release edits three files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

from tests.e2e.conftest import Deployment, Installation, make_installation

APPLIED = 10
WORDS = [
    "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz_", k=3 + i % 9))
    for i in range(3000)
]


def _source(index: int) -> str:
    pick = random.Random(index)
    lines = (
        " " * (4 * pick.randrange(3)) + " ".join(pick.choices(WORDS, k=pick.randrange(3, 12)))
        for _ in range(400)
    )
    return f"# module {index}\n" + "\n".join(lines) + "\n"


TREE = {f"lib/pkg{i % 7}/module_{i:03d}.py": _source(i) for i in range(120)}
EDITED = ["lib/pkg1/module_008.py", "lib/pkg3/module_045.py", "lib/pkg5/module_110.py"]


def app(version: str) -> bytes:
    files = {"bin/acme-erp": f"#!/bin/sh\necho acme-erp {version}\n", "VERSION": version, **TREE}
    if version != "1.0.0":  # every later release fixes a bug in each edited file
        for name in EDITED:
            files[name] = files[name].replace("\n", f"\n# fixed in {version}\n", 3)
    mtime = {"1.0.0": 1_700_000_000, "1.1.0": 1_710_000_000}.get(version, 1_720_000_000)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"acme-erp-{version}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o755, mtime
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=mtime)


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
    deployment.proxy.sent.clear()
    result = inst.agent("update", "--json")
    assert result.returncode == APPLIED, result.stderr
    full = len(app("1.2.0"))
    assert full > 500_000, "a realistic artifact, not a toy"
    outcome = json.loads(result.stdout)
    assert outcome["patch"].startswith("patch of ") and outcome["patch"].endswith(
        f" instead of {full / 1e6:.1f} MB"
    ), outcome
    # What crossed the wire for the update: the download (the patch), its headers, and the
    # check and root documents around it.
    downloads = [(head, body) for path, head, body in deployment.proxy.sent if "/download/" in path]
    assert len(downloads) == 1, "the patch only, never the full artifact"
    head, body = downloads[0]
    assert body + head <= full * 0.03 + head, f"{body} bytes of {full}"
    assert sum(h + b for _, h, b in deployment.proxy.sent) <= full * 0.03 + 32_000
    assert inst.runs() == "acme-erp 1.2.0"
    expected = tmp_path / "expected"
    with tarfile.open(fileobj=io.BytesIO(app("1.2.0"))) as tar:
        tar.extractall(expected, filter="data")
    assert tree(inst.current) == tree(expected / "acme-erp-1.2.0")


def test_a_corrupted_patch_falls_back_to_the_full_download_and_is_not_tried_again(
    deployment: Deployment, tmp_path: Path
) -> None:
    inst = setup_product(deployment, tmp_path, "delta-fallback")
    publish(deployment, tmp_path, "delta-fallback", "1.2.0")
    deployment.proxy.mode = "flip-patch"
    result = inst.agent("update")
    assert result.returncode == APPLIED, result.stderr
    full = len(app("1.2.0")) / 1e6
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "patch did not apply (the patch does not match its signed SHA-256); "
        f"downloading the full {full:.1f} MB"
    ), result.stdout
    assert lines[1] == "updated 1.1.0 → 1.2.0"
    assert inst.runs() == "acme-erp 1.2.0"
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert len(state["failed_patches"]) == 1
