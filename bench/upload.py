"""Publishing a large artifact through the admin API vs a raw streamed upload, same run.

Usage: python bench/upload.py [--size-mib 1024]

Prints the throughput of both, their ratio (goal: publish ≥ 50% of raw), and how much the
serving worker's peak RSS grew during the publish (goal: ≤ 64 MB).
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import ROOT, Gunicorn, status_kib

BOUNDARY = "vigorbenchboundary"
CHUNK = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            out.write(block[:n])
            written += n


def post_stream(
    url: str, path: str, headers: dict[str, str], head: bytes, file: Path, tail: bytes
) -> tuple[int, float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    length = len(head) + file.stat().st_size + len(tail)
    conn.putrequest("POST", path)
    for k, v in {**headers, "Content-Length": str(length)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    start = time.perf_counter()
    conn.send(head)
    with file.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status >= 300:
        raise SystemExit(f"upload failed: {response.status} {body[:300]!r}")
    conn.close()
    return response.status, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        artifact = work / "artifact.bin"
        make_file(artifact, size)
        env = {
            "VIGOR_INSTANCE_DIR": str(work / "instance"),
            "VIGOR_STORAGE_ROOT": str(work / "releases"),
            "VIGOR_SECRET_KEY": secrets.token_urlsafe(32),
            "RAW_UPLOAD_DIR": str(work),
        }
        vigor = [sys.executable, "-m", "server.cli"]
        subprocess.run(
            [*vigor, "init"], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True
        )
        subprocess.run(
            [*vigor, "product", "add", "bench"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [*vigor, "token", "create", "bench"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

        raw = Gunicorn("bench.raw_upload_app:app", env)
        try:
            _, raw_seconds = post_stream(
                raw.url, "/upload", {"Content-Type": "application/octet-stream"}, b"", artifact, b""
            )
        finally:
            raw.stop()

        server = Gunicorn("wsgi:app", env)
        try:
            (worker,) = server.worker_pids()
            rss_before = status_kib(worker, "VmRSS")
            fields = {"product": "bench", "version": "1.0.0", "kind": "update"}
            head = (
                b"".join(
                    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items()
                )
                + (
                    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="artifact.linux-x86_64"; '
                    'filename="artifact.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode()
            )
            tail = f"\r\n--{BOUNDARY}--\r\n".encode()
            _, api_seconds = post_stream(
                server.url,
                "/api/v1/admin/releases",
                {
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                },
                head,
                artifact,
                tail,
            )
            rss_peak = status_kib(worker, "VmHWM")
        finally:
            server.stop()

    mb = size / 1e6
    raw_rate, api_rate = mb / raw_seconds, mb / api_seconds
    growth_mb = (rss_peak - rss_before) / 1024
    print(f"artifact: {args.size_mib} MiB")
    print(f"raw streamed upload:     {raw_rate:8.1f} MB/s ({raw_seconds:.2f} s)")
    print(f"publish through the API: {api_rate:8.1f} MB/s ({api_seconds:.2f} s)")
    print(f"ratio: {api_rate / raw_rate:.2f} (goal >= 0.50)")
    print(f"worker peak RSS growth: {growth_mb:.1f} MB (goal <= 64)")


if __name__ == "__main__":
    main()
