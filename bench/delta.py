"""Delta patches on a realistic application tarball: a minor and a major step, same run.

Usage: python bench/delta.py

The "application" is a tarball of real installed Python packages (Flask and friends from this
environment). The minor step edits a handful of modules (a bug-fix release); the major step adds a
package, drops another and edits many modules. For each, prints the patch as a fraction of the
full .tar.gz (goal for the minor step: ≤ 10%), generation time and peak memory, and apply time.
"""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sysconfig  # noqa: E402

from client_agent.delta import apply_delta  # noqa: E402
from server.domain.delta import uncompressed  # noqa: E402

SITE = Path(sysconfig.get_paths()["purelib"])
BASE = [
    "flask",
    "werkzeug",
    "jinja2",
    "click",
    "sqlalchemy",
    "alembic",
    "itsdangerous",
    "markupsafe",
]

Mutate = Callable[[str, bytes], bytes | None]


def build(dest: Path, packages: list[str], mutate: Mutate) -> None:
    with tarfile.open(dest, "w:gz") as tar:
        for package in packages:
            for path in sorted((SITE / package).rglob("*")):
                if not path.is_file() or "__pycache__" in path.parts:
                    continue
                data = mutate(str(path.relative_to(SITE)), path.read_bytes())
                if data is None:
                    continue
                info = tarfile.TarInfo(f"acme-app/{path.relative_to(SITE)}")
                info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
                tar.addfile(info, io.BytesIO(data))


def minor(name: str, data: bytes) -> bytes:
    # A bug-fix release: five modules get a changed line near their start.
    if name in {
        "flask/app.py",
        "werkzeug/routing/rules.py",
        "sqlalchemy/orm/session.py",
        "jinja2/environment.py",
        "click/core.py",
    }:
        return data.replace(b"import ", b"import  ", 1)
    return data


def major(name: str, data: bytes) -> bytes | None:
    if name.startswith("itsdangerous/"):
        return None  # a dependency dropped
    if name.endswith(".py") and zlib.crc32(name.encode()) % 3 == 0:  # stable across runs
        return data.replace(b"def ", b"def  ") + b"\n# reworked for 2.0\n"
    return data


def measure_generation(old: Path, new: Path, out: Path) -> tuple[float, float, int]:
    """Generation in a subprocess: seconds, peak RSS in MB, patch size."""
    code = (
        "import resource, sys, time\n"
        "from pathlib import Path\n"
        "from server.domain.delta import make_delta\n"
        "t = time.perf_counter(); n = make_delta(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
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


def step(work: Path, label: str, old_gz: Path, new_gz: Path) -> None:
    with old_gz.open("rb") as handle:
        old = uncompressed(handle, work / f"{label}-old.tar")
    with new_gz.open("rb") as handle:
        new = uncompressed(handle, work / f"{label}-new.tar")
    patch = work / f"{label}.delta"
    seconds, rss_mb, size = measure_generation(old.path, new.path, patch)
    started = time.perf_counter()
    sha = apply_delta(old.path, patch, work / f"{label}-out.tar", new.size)
    applied = time.perf_counter() - started
    assert sha == new.sha256, "the patched content differs"
    full = new_gz.stat().st_size
    print(
        f"{label}: full {full / 1e6:.2f} MB, patch {size / 1e3:.1f} kB = {size / full:.1%} of the full "
        f"artifact; generation {seconds:.2f} s, {rss_mb:.0f} MB peak RSS; apply {applied:.2f} s"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        v1, v11, v2 = work / "app-1.0.tar.gz", work / "app-1.1.tar.gz", work / "app-2.0.tar.gz"
        build(v1, BASE, lambda name, data: data)
        build(v11, BASE, minor)
        build(v2, [*BASE, "packaging"], major)
        step(work, "minor (1.0 -> 1.1)", v1, v11)
        step(work, "major (1.0 -> 2.0)", v1, v2)
    print(
        f"(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
