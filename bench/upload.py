"""Publishing a large artifact through the admin API vs a raw streamed upload, same run.

Usage: python bench/upload.py [--size-mib 1024] [--rounds 3] [--via-nginx]

Each round uploads the same file to a bare app that streams the body to a file
(``bench/raw_upload_app.py``), to the same app computing the body's SHA-256 as it goes, and
publishes it through the admin API twice: the two-step way (``POST /api/v1/admin/uploads`` with
the file as the raw body, then a JSON ``POST /api/v1/admin/releases`` naming the upload, timed
together, end to end) and the one-step multipart form (``POST /api/v1/admin/releases``). Each
goes to a fresh gunicorn (one sync worker), in rotating order. Prints every round, the median
ratio of the two-step publish's throughput to the raw upload's (goal: ≥ 0.80), the same against
the hashing baseline, the multipart publish's ratio for comparison, and the serving worker's
largest RSS growth during a publish (goal: ≤ 64 MB). The raw app does no fsync and, in its first
form, no hashing: a publish pays for the digest its blobs are named by and for durability. On 2
cores, with the client sending from one of them, SHA-256 (about 1.3 GB/s here) is a large share
of what a publish adds.

``--via-nginx`` puts a real nginx in front of both, with the production file
``deploy/nginx/vigor.conf`` (rendered as tests/common/deploy.py does: TLS with a self-signed
certificate, the upload locations' streaming settings); the raw uploads go to the upload
route's path, so they pass through the same location as the two-step publish's bytes.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid``, all its threads, in seconds (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        written = 0
        while written < size:
            n = min(CHUNK, size - written)
            out.write(block[:n])
            written += n


def _connect(url: str, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    scheme, _, address = url.partition("://")
    host, port = address.split(":")
    if scheme == "https":
        return http.client.HTTPSConnection(host, int(port), timeout=600, context=context)
    return http.client.HTTPConnection(host, int(port), timeout=600)


def post_stream(
    url: str,
    path: str,
    headers: dict[str, str],
    head: bytes,
    file: Path,
    tail: bytes,
    context: ssl.SSLContext | None = None,
) -> tuple[float, bytes]:
    """POST ``head + file + tail`` with a Content-Length; returns the seconds until the answer,
    and the answer."""
    conn = _connect(url, context)
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
    return elapsed, body


def post_json(
    url: str, path: str, token: str, document: object, context: ssl.SSLContext | None
) -> float:
    """POST ``document`` as JSON; returns the seconds until the answer."""
    conn = _connect(url, context)
    start = time.perf_counter()
    conn.request(
        "POST",
        path,
        body=json.dumps(document).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status >= 300:
        raise SystemExit(f"publish failed: {response.status} {body[:300]!r}")
    conn.close()
    return elapsed


@dataclass
class Bench:
    work: Path
    artifact: Path
    env: dict[str, str]
    via_nginx: bool
    last_growth: float = 0.0
    last_cpu: float = 0.0  # the serving worker's CPU seconds (all its threads) for the last one

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
        with self.serve("bench.raw_upload_app:app", **hash_env) as (server, url, context):
            (worker,) = server.worker_pids()
            cpu_before = cpu_seconds(worker)
            headers = {"Content-Type": "application/octet-stream"}
            # The upload route's path: through nginx, the same location (streamed, no limit).
            path = "/api/v1/admin/uploads"
            seconds = post_stream(url, path, headers, b"", self.artifact, b"", context)[0]
            self.last_cpu = cpu_seconds(worker) - cpu_before
            return seconds

    def publish(self, product: str, token: str, staged: bool) -> float:
        """Seconds for the publish (``staged``: upload, then the JSON publish; else the
        multipart form); the worker's RSS growth in MB while it ran is kept in ``last_growth``,
        the CPU time the large publish took it in ``last_cpu``.

        A small release of another product is published first, the same way: what a fresh
        worker does once (imports, keys, first queries) is not what a publish costs. The RSS
        growth counts it.
        """
        send = self._staged if staged else self._multipart
        with self.serve("wsgi:app") as (server, url, context):
            (worker,) = server.worker_pids()
            rss_before = status_kib(worker, "VmRSS")
            warm_up = self.work / "warm-up.bin"
            warm_up.write_bytes(b"warm up")
            send(url, context, token, f"{product}-warm-up", "1.0.0", warm_up)
            cpu_before = cpu_seconds(worker)
            seconds = send(url, context, token, product, "1.0.0", self.artifact)
            self.last_cpu = cpu_seconds(worker) - cpu_before
            self.last_growth = (status_kib(worker, "VmHWM") - rss_before) / 1024
            return seconds

    @staticmethod
    def _staged(
        url: str,
        context: ssl.SSLContext | None,
        token: str,
        product: str,
        version: str,
        file: Path,
    ) -> float:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
        path = f"/api/v1/admin/uploads?filename={file.name}"
        sent, answer = post_stream(url, path, headers, b"", file, b"", context)
        upload_id = json.loads(answer)["id"]
        release = {
            "product": product,
            "version": version,
            "kind": "update",
            "artifacts": {"linux-x86_64": upload_id},
        }
        return sent + post_json(url, "/api/v1/admin/releases", token, release, context)

    @staticmethod
    def _multipart(
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
        path = "/api/v1/admin/releases"
        return post_stream(url, path, headers, head, file, tail, context)[0]


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
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=ROOT / "bench",
        help="where the artifact, the raw uploads and the store go (e.g. /dev/shm, to take a "
        "busy disk out of the comparison)",
    )
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    mb = size / 1e6
    print(f"artifact: {args.size_mib} MiB, {args.rounds} rounds" + (", via nginx" * args.via_nginx))
    ratios: dict[str, list[float]] = {"raw": [], "hashed": [], "multipart": []}
    growths: list[float] = []
    cpu: dict[str, list[float]] = {"raw": [], "hashed": [], "staged": [], "multipart": []}
    gib = size / 1024**3
    with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=args.work_dir) as tmp:
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
            # Products per round and way: a second large release of one product would start
            # delta patches of the first, competing with the next round.
            for way in ("staged", "multipart"):
                vigor(env, "product", "add", f"bench-{n}-{way}")
                vigor(env, "product", "add", f"bench-{n}-{way}-warm-up")
            seconds: dict[str, float] = {}
            round_growth: list[float] = []

            def publish(way: str, n: int = n, grown: list[float] = round_growth) -> float:
                took = bench.publish(f"bench-{n}-{way}", token, staged=way == "staged")
                grown.append(bench.last_growth)
                return took

            runs: list[tuple[str, Callable[[], float]]] = [
                ("raw", bench.raw),
                ("hashed", functools.partial(bench.raw, hashed=True)),
                ("staged", functools.partial(publish, "staged")),
                ("multipart", functools.partial(publish, "multipart")),
            ]
            # Rotate which goes first, so that a drift in the machine's load evens out.
            for name, measure in runs[n % 4 :] + runs[: n % 4]:
                seconds[name] = measure()
                cpu[name].append(bench.last_cpu / gib)
            ratios["raw"].append(seconds["raw"] / seconds["staged"])
            ratios["hashed"].append(seconds["hashed"] / seconds["staged"])
            ratios["multipart"].append(seconds["raw"] / seconds["multipart"])
            growths.extend(round_growth)
            print(
                f"round {n}: raw {mb / seconds['raw']:7.1f} MB/s, "
                f"raw+SHA-256 {mb / seconds['hashed']:7.1f} MB/s, "
                f"upload+publish {mb / seconds['staged']:7.1f} MB/s ({seconds['staged']:.2f} s), "
                f"multipart publish {mb / seconds['multipart']:7.1f} MB/s; "
                f"ratio to raw {ratios['raw'][-1]:.2f}, to raw+SHA-256 {ratios['hashed'][-1]:.2f}, "
                f"multipart to raw {ratios['multipart'][-1]:.2f}; "
                f"worker RSS growth {max(round_growth):.1f} MB",
                flush=True,
            )
            print(
                "         serving worker CPU s/GiB: "
                + ", ".join(f"{name} {cpu[name][-1]:.2f}" for name in cpu),
                flush=True,
            )
    print(f"median ratio upload+publish/raw: {statistics.median(ratios['raw']):.2f} (goal >= 0.80)")
    print(
        f"median ratio upload+publish/raw+SHA-256: {statistics.median(ratios['hashed']):.2f} "
        "(the same with the digest every stored blob needs)"
    )
    print(
        f"median ratio multipart publish/raw: {statistics.median(ratios['multipart']):.2f} "
        "(the one-step form, for comparison)"
    )
    print(f"worker peak RSS growth: {max(growths):.1f} MB (largest of the rounds; goal <= 64)")
    print(
        "median serving worker CPU s/GiB (all its threads; less sensitive to a busy machine): "
        + ", ".join(f"{name} {statistics.median(cpu[name]):.2f}" for name in cpu)
    )


if __name__ == "__main__":
    main()
