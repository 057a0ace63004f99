"""Publishing a large artifact through the admin API vs a raw streamed upload, same run.

Usage: python bench/upload.py [--size-mib 1024] [--rounds 3] [--via-nginx]

Each round uploads the same file to a bare app that streams the body to a file
(``bench/raw_upload_app.py``), to the same app computing the body's SHA-256 as it goes, and
publishes it through ``POST /api/v1/admin/releases``, in rotating order, each to a fresh
gunicorn (one sync worker). Prints every round, the median ratio of publish to raw throughput
(goal: ≥ 0.80), the same against the hashing baseline, and the serving worker's largest RSS
growth during a publish (goal: ≤ 64 MB). The raw app does no fsync and, in its first form, no
hashing: the publish pays for the digest its blobs are named by and for durability. On 2 cores,
with the client sending from one of them, SHA-256 (about 1.3 GB/s here) is a large share of
what a publish adds.

``--via-nginx`` puts a real nginx in front of both, with the production file
``deploy/nginx/vigor.conf`` (rendered as tests/common/deploy.py does: TLS with a self-signed
certificate, the upload location's streaming settings); both uploads go to the publish route's
path, so both pass through that location.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import ROOT, Gunicorn, free_port, status_kib

BOUNDARY = "vigorbenchboundary"
CHUNK = 1024 * 1024


@contextmanager
def nginx_in_front(upstream_port: int, work: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """nginx with the production file ``deploy/nginx/vigor.conf`` (TLS, a self-signed
    certificate) proxying to ``upstream_port``; yields its https URL and a context trusting it."""
    from tests.common.deploy import self_signed_certificate, start_nginx

    directory = Path(tempfile.mkdtemp(prefix="vigor-bench-nginx-"))  # reachable by nobody
    certificate, certificate_key = self_signed_certificate(directory)
    https_port, http_port = free_port(), free_port()
    url = f"https://localhost:{https_port}"
    values = {
        "SERVER_NAME": "localhost",
        "PUBLIC_URL": url,
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(http_port),
        "TLS_CERTIFICATE": str(certificate),
        "TLS_CERTIFICATE_KEY": str(certificate_key),
        "VIGOR_PORT_1": str(upstream_port),  # the one gunicorn of the round, twice
        "VIGOR_PORT_2": str(upstream_port),
        "VIGOR_STORAGE_ROOT": str(work / "releases"),
        "DNS_RESOLVER": "127.0.0.1",
    }
    proc = start_nginx(directory, values)
    context = ssl.create_default_context(cafile=str(certificate))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = http.client.HTTPSConnection("localhost", https_port, context=context)
                conn.request("GET", "/readyz")
                conn.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"nginx did not start: {directory}/error.log") from None
                time.sleep(0.05)
        yield url, context
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            out.write(block[:n])
            written += n


def post_stream(
    url: str,
    path: str,
    headers: dict[str, str],
    head: bytes,
    file: Path,
    tail: bytes,
    context: ssl.SSLContext | None = None,
) -> float:
    """POST ``head + file + tail`` with a Content-Length; returns the seconds until the answer."""
    scheme, _, address = url.partition("://")
    host, port = address.split(":")
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, int(port), timeout=600, context=context)
    else:
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
    return elapsed


@dataclass
class Bench:
    work: Path
    artifact: Path
    env: dict[str, str]
    via_nginx: bool
    last_growth: float = 0.0

    @contextmanager
    def serve(
        self, app_spec: str, **env: str
    ) -> Iterator[tuple[Gunicorn, str, ssl.SSLContext | None]]:
        """A fresh gunicorn for ``app_spec`` (and an nginx before it); yields it, the URL and
        the TLS context to reach it."""
        server = Gunicorn(app_spec, {**self.env, **env})
        try:
            if self.via_nginx:
                with nginx_in_front(server.port, self.work) as (url, context):
                    yield server, url, context
            else:
                yield server, server.url, None
        finally:
            server.stop()

    def raw(self, hashed: bool = False) -> float:
        hash_env = {"RAW_UPLOAD_HASH": "1" if hashed else "0"}
        with self.serve("bench.raw_upload_app:app", **hash_env) as (_, url, context):
            headers = {"Content-Type": "application/octet-stream"}
            # The publish route's path: through nginx, the same location (streamed, no limit).
            path = "/api/v1/admin/releases"
            return post_stream(url, path, headers, b"", self.artifact, b"", context)

    def publish(self, product: str, token: str) -> float:
        """Seconds for the publish; the worker's RSS growth in MB while it ran is kept in
        ``last_growth``.

        A small release of another product is published first: what a fresh worker does once
        (imports, keys, first queries) is not what a publish costs. The RSS growth counts it.
        """
        with self.serve("wsgi:app") as (server, url, context):
            (worker,) = server.worker_pids()
            rss_before = status_kib(worker, "VmRSS")
            warm_up = self.work / "warm-up.bin"
            warm_up.write_bytes(b"warm up")
            self._publish(url, context, token, f"{product}-warm-up", "1.0.0", warm_up)
            seconds = self._publish(url, context, token, product, "1.0.0", self.artifact)
            self.last_growth = (status_kib(worker, "VmHWM") - rss_before) / 1024
            return seconds

    @staticmethod
    def _publish(
        url: str,
        context: ssl.SSLContext | None,
        token: str,
        product: str,
        version: str,
        file: Path,
    ) -> float:
        fields = {"product": product, "version": version, "kind": "update"}
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
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        return post_stream(url, "/api/v1/admin/releases", headers, head, file, tail, context)


def vigor(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--via-nginx", action="store_true", help="through nginx, unbuffered")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    mb = size / 1e6
    print(f"artifact: {args.size_mib} MiB, {args.rounds} rounds" + (", via nginx" * args.via_nginx))
    ratios: list[float] = []
    hashed_ratios: list[float] = []
    growths: list[float] = []
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
        vigor(env, "init")
        token = vigor(env, "token", "create", "bench")
        bench = Bench(work, artifact, env, args.via_nginx)
        for n in range(1, args.rounds + 1):
            # A product per round: a second large release of one product would start delta
            # patches of the first in the serving worker, competing with the next round.
            product = f"bench-{n}"
            vigor(env, "product", "add", product)
            vigor(env, "product", "add", f"{product}-warm-up")
            seconds: dict[str, float] = {}
            runs: list[tuple[str, Callable[[], float]]] = [
                ("raw", bench.raw),
                ("hashed", functools.partial(bench.raw, hashed=True)),
                ("publish", functools.partial(bench.publish, product, token)),
            ]
            # Rotate which goes first, so that a drift in the machine's load evens out.
            for name, measure in runs[n % 3 :] + runs[: n % 3]:
                seconds[name] = measure()
            growth = bench.last_growth
            ratio, hashed_ratio = (seconds[k] / seconds["publish"] for k in ("raw", "hashed"))
            ratios.append(ratio)
            hashed_ratios.append(hashed_ratio)
            growths.append(growth)
            print(
                f"round {n}: raw {mb / seconds['raw']:7.1f} MB/s, "
                f"raw+SHA-256 {mb / seconds['hashed']:7.1f} MB/s, "
                f"publish {mb / seconds['publish']:7.1f} MB/s ({seconds['publish']:.2f} s); "
                f"ratio to raw {ratio:.2f}, to raw+SHA-256 {hashed_ratio:.2f}; "
                f"worker RSS growth {growth:.1f} MB",
                flush=True,
            )
    print(f"median ratio publish/raw: {statistics.median(ratios):.2f} (goal >= 0.80)")
    print(
        f"median ratio publish/raw+SHA-256: {statistics.median(hashed_ratios):.2f} "
        "(the same with the digest every stored blob needs)"
    )
    print(f"worker peak RSS growth: {max(growths):.1f} MB (largest of the rounds; goal <= 64)")


if __name__ == "__main__":
    main()
