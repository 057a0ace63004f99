"""Delta patches on real releases of a real project, against zstd's own command line.

Usage: python bench/delta.py   (needs pip's network access the first time, and the `zstd`
command: `scripts/system-deps --bench`)

Consecutive SQLAlchemy sdists, fetched with pip at run time into ``bench/.cache/`` (kept for the
next run), are repacked as application artifacts: the top folder renamed after the version and
every file's mtime set to the build time, as a vendor's build does. Two steps: a bug-fix release
(2.0.35 → 2.0.36) and a major one (1.4.54 → 2.0.35). For each, on the same uncompressed tars in
the same run: Vigor's patch as a share of the full .tar.gz and against
``zstd -3 --long=27 --patch-from``, generation time and peak RSS (a subprocess each), apply time.

Goals (issue #15): bug-fix ≤ 3 % of the full artifact and ≤ 1.5× zstd's size; major ≤ 1.2×
zstd's; generation ≤ 3 s and ≤ 256 MB RSS per 10 MB artifact.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.domain.delta import FORMAT, uncompressed  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
PROJECT = "SQLAlchemy"
BUILT = {"1.4.54": 1_725_000_000, "2.0.35": 1_727_000_000, "2.0.36": 1_728_500_000}
STEPS = [("bug-fix", "2.0.35", "2.0.36"), ("major", "1.4.54", "2.0.35")]


def sdist(version: str) -> Path:
    """The project's sdist of ``version``, downloaded once with pip."""
    found = sorted(CACHE.glob(f"{PROJECT.lower()}-{version}.tar.gz"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
            *("--no-binary", PROJECT, "-d", str(CACHE), f"{PROJECT}=={version}"),
        ],
        check=True,
    )
    return sorted(CACHE.glob(f"{PROJECT.lower()}-{version}.tar.gz"))[0]


def repack(source: Path, version: str, out: Path) -> None:
    """The sdist as an application artifact: top folder ``acme-app-<version>``, build mtimes."""
    mtime = BUILT[version]
    with (
        tarfile.open(source) as src,
        out.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src.getmembers():
            rest = member.name.split("/", 1)[1:]
            member.name = "/".join([f"acme-app-{version}", *rest])
            member.mtime, member.uname, member.gname = mtime, "build", "build"
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)


def generate(old: Path, new: Path, out: Path) -> tuple[float, float, int]:
    """Vigor's generation in a subprocess: seconds, peak RSS in MB, patch size."""
    code = (
        "import resource, sys, time\n"
        "from pathlib import Path\n"
        "from server.domain.delta import make_delta\n"
        "t = time.perf_counter()\n"
        "n = make_delta(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(old), str(new), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss_kib, size = result.stdout.split()
    return float(seconds), int(rss_kib) / 1024, int(size)


def zstd_cli(old: Path, new: Path, out: Path) -> tuple[int, float]:
    started = time.perf_counter()
    subprocess.run(
        ["zstd", "-q", "-f", "-3", "--long=27", f"--patch-from={old}", str(new), "-o", str(out)],
        check=True,
    )
    return out.stat().st_size, time.perf_counter() - started


def apply_in_subprocess(old: Path, patch: Path, out: Path, size: int) -> tuple[float, float, str]:
    code = (
        "import resource, sys, time\n"
        "from pathlib import Path\n"
        "from client_agent.delta import apply_delta\n"
        "t = time.perf_counter()\n"
        f"sha = apply_delta(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), {size}, "
        f"{FORMAT!r})\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, sha)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(old), str(patch), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss_kib, sha = result.stdout.split()
    return float(seconds), int(rss_kib) / 1024, sha


def step(work: Path, label: str, old_version: str, new_version: str) -> None:
    artifacts = {}
    for version in (old_version, new_version):
        artifacts[version] = work / f"acme-app-{version}.tar.gz"
        if not artifacts[version].exists():
            repack(sdist(version), version, artifacts[version])
    with artifacts[old_version].open("rb") as handle:
        old = uncompressed(handle, work / f"{old_version}.tar")
    with artifacts[new_version].open("rb") as handle:
        new = uncompressed(handle, work / f"{new_version}.tar")
    patch = work / f"{label}.delta"
    seconds, rss_mb, size = generate(old.path, new.path, patch)
    cli_size, cli_seconds = zstd_cli(old.path, new.path, work / f"{label}.zst")
    applied, apply_rss, sha = apply_in_subprocess(old.path, patch, work / "out.tar", new.size)
    assert sha == new.sha256, "the patched content differs"
    full = artifacts[new_version].stat().st_size
    print(
        f"{label} ({old_version} -> {new_version}): full {full / 1e6:.2f} MB "
        f"(tar {new.size / 1e6:.1f} MB); patch {size / 1e3:.1f} KB = {size / full:.2%} of the "
        f"full artifact, {size / cli_size:.2f}x zstd -3 --long=27 --patch-from "
        f"({cli_size / 1e3:.1f} KB, {cli_seconds:.2f} s); generation {seconds:.2f} s, "
        f"{rss_mb:.0f} MB peak RSS; apply {applied:.2f} s, {apply_rss:.0f} MB peak RSS"
    )


def main() -> None:
    if shutil.which("zstd") is None:
        sys.exit("bench/delta.py needs the zstd command: scripts/system-deps --bench")
    with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=ROOT / "bench") as tmp:
        for label, old_version, new_version in STEPS:
            step(Path(tmp), label, old_version, new_version)


if __name__ == "__main__":
    main()
