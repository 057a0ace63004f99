"""Verifying a large artifact with the agent's own code path vs raw hashlib, in the same run.

Usage: python bench/agent.py [--size-mib 1024] [--rounds 5] [--download]

The agent's path is the one `apply` and `verify` take before trusting a file:
``client_agent.files.hash_file`` (length and SHA-256, one reusable 1 MiB buffer) then
``client_agent.verify.check_artifact`` (the comparison against the signed manifest). Each
measurement runs in a fresh subprocess over the same file (page cache warmed first) and reports
its own time and peak RSS (``ru_maxrss``). Goal: agent >= 90% of raw ``hashlib.sha256`` speed,
agent peak RSS < 64 MB.

``--download`` also times the streaming path (``UrllibFetcher.download``: read, write, hash in
one pass) from a loopback HTTP server, for information.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RAW = """
import hashlib, json, resource, sys, time
start = time.perf_counter()
digest = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1024 * 1024):
        digest.update(chunk)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "sha256": digest.hexdigest(),
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

AGENT = """
import json, resource, sys, time
from pathlib import Path
from client_agent.files import hash_file
from client_agent.verify import Artifact, check_artifact
path, size, sha256 = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
length, digest = hash_file(path)
check_artifact(length, digest.hexdigest(), Artifact("any", path.name, size, sha256))
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "sha256": digest.hexdigest(),
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

DOWNLOAD = """
import functools, http.server, json, resource, sys, threading, time
from pathlib import Path
from client_agent.fetch import UrllibFetcher
path, size, sha256 = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
handler.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
part = path.with_name("download.part")
part.unlink(missing_ok=True)
start = time.perf_counter()
digest = UrllibFetcher().download(
    f"http://127.0.0.1:{server.server_address[1]}/{path.name}", part, size, sha256, None)
elapsed = time.perf_counter() - start
server.shutdown()
part.unlink()
print(json.dumps({"seconds": elapsed, "sha256": digest,
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def write_artifact(path: Path, size_mib: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for index in range(size_mib):
            # Vary each block a little: no file system or cache gets to deduplicate it.
            out.write(index.to_bytes(8, "big") + block[8:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--download", action="store_true", help="also time the streaming path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=ROOT / "bench") as tmp:
        path = Path(tmp) / "artifact.bin"
        write_artifact(path, args.size_mib)
        size = path.stat().st_size
        sha256 = measure(RAW, str(path))["sha256"]  # also warms the page cache
        raw_best = agent_best = float("inf")
        raw_rss = agent_rss = 0.0
        for _ in range(args.rounds):  # interleaved, best of N: the machine is shared and noisy
            raw = measure(RAW, str(path))
            agent = measure(AGENT, str(path), str(size), sha256)
            assert raw["sha256"] == agent["sha256"] == sha256
            raw_best = min(raw_best, raw["seconds"])
            agent_best = min(agent_best, agent["seconds"])
            raw_rss = max(raw_rss, raw["rss_kib"])
            agent_rss = max(agent_rss, agent["rss_kib"])
        download = measure(DOWNLOAD, str(path), str(size), sha256) if args.download else None
    mb = size / 1e6
    ratio = raw_best / agent_best
    print(f"artifact: {args.size_mib} MiB, best of {args.rounds} rounds")
    print(
        f"raw hashlib.sha256:        {mb / raw_best:8.1f} MB/s  (peak RSS {raw_rss / 1024:.1f} MB)"
    )
    print(
        f"agent verification:        {mb / agent_best:8.1f} MB/s  (peak RSS {agent_rss / 1024:.1f} MB)"
    )
    if download is not None:
        assert download["sha256"] == sha256
        print(
            f"agent download (loopback): {mb / download['seconds']:8.1f} MB/s  "
            f"(peak RSS {download['rss_kib'] / 1024:.1f} MB; read + write + hash in one pass)"
        )
    print(f"ratio agent/raw: {ratio:.2f} (goal >= 0.90): {'ok' if ratio >= 0.9 else 'MISSED'}")
    print(
        f"agent peak RSS: {agent_rss / 1024:.1f} MB (goal < 64): {'ok' if agent_rss < 65536 else 'MISSED'}"
    )
    sys.exit(0 if ratio >= 0.9 and agent_rss < 65536 else 1)


if __name__ == "__main__":
    main()
