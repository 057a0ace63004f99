"""`vigor init` and `vigor serve` as real processes: two inits at once, a schema the code does not
know, a deploy's SIGTERM during an upload, and metrics counted by two workers adding up."""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import create_engine, text

from tests.common.live import LiveServer
from tests.common.postgres import PostgresCluster


def _vigor(server: LiveServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *args],
        cwd=server.base,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_inits_at_once_on_an_empty_postgresql_make_one_root(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.create_database(f"two_inits_{secrets.token_hex(4)}")  # no migration ran
    server = LiveServer(tmp_path, public_url="http://127.0.0.1")
    server.env["VIGOR_DATABASE_URL"] = url
    first, second = _vigor(server, "init"), _vigor(server, "init")
    outputs = [proc.communicate(timeout=120) for proc in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM trust_roots")) == 1
    finally:
        engine.dispose()
    made = [out for out, _ in outputs if "root key:" in out]
    assert len(made) == 1, outputs  # one made the root; the other found it made


@pytest.fixture
def initialised(tmp_path: Path) -> LiveServer:
    server = LiveServer(tmp_path, public_url="http://127.0.0.1")
    result = server.vigor("init")
    assert result.returncode == 0, result.stderr
    server.env["VIGOR_PUBLIC_URL"] = server.url
    return server


def _set_revision(server: LiveServer, revision: str) -> None:
    database = server.base / "instance" / "vigor.db"
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("revision", "told"),
    [
        (
            "0006_throttle",
            "error: the database schema is at 0006_throttle, this Vigor needs {head}: "
            "run `vigor init`",
        ),
        (
            "0099_future",
            "error: the database schema is at 0099_future, newer than this Vigor knows (it needs "
            "{head}): run the Vigor version that migrated it, or a newer one",
        ),
    ],
)
def test_serve_refuses_a_schema_it_does_not_match(
    initialised: LiveServer, revision: str, told: str
) -> None:
    from server.db import Database

    head = Database("sqlite://").head_revision
    _set_revision(initialised, revision)
    result = initialised.vigor("serve", "--port", str(initialised.port))
    assert result.returncode == 1
    assert result.stderr.strip() == told.format(head=head)
    assert "Traceback" not in result.stdout + result.stderr
    with socket.socket() as sock:  # nothing was started
        assert sock.connect_ex(("127.0.0.1", initialised.port)) != 0


class Served:
    def __init__(self, server: LiveServer, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.server, self.proc, self.log = server, proc, log

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)


def _serve(server: LiveServer, *options: str) -> Served:
    log = server.base / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(server.port), *options],
            cwd=server.base,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=2):
                return Served(server, proc, log)
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


@pytest.fixture
def served_twice(initialised: LiveServer) -> Iterator[Served]:
    served = _serve(initialised, "--workers", "2", "--threads", "4", "--graceful-timeout", "60")
    yield served
    served.stop()


def test_sigterm_lets_an_upload_in_flight_finish(served_twice: Served) -> None:
    server = served_twice.server
    assert server.vigor("product", "add", "acme-erp", "--name", "Acme ERP").returncode == 0
    token = server.vigor("token", "create", "ci").stdout.strip()
    boundary = "vigor-" + secrets.token_hex(8)
    artifact = secrets.token_bytes(4 * 1024 * 1024)
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("product", "acme-erp"), ("version", "1.0.0"), ("kind", "update"))
    ).encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="artifact.linux-x86_64"; '
        'filename="acme.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/api/v1/admin/releases")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + len(artifact) + len(tail)))
    conn.endheaders()
    conn.send(head + artifact[: len(artifact) // 2])
    served_twice.proc.send_signal(signal.SIGTERM)  # a deploy stops this server
    deadline = time.monotonic() + 30
    # The master passed the signal on and the idle worker is gone: shutdown is under way.
    while "Worker exiting" not in served_twice.log.read_text():
        assert time.monotonic() < deadline, served_twice.log.read_text()
        time.sleep(0.05)
    assert "Handling signal: term" in served_twice.log.read_text()
    assert served_twice.proc.poll() is None  # ...and the upload in flight is waited for
    conn.send(artifact[len(artifact) // 2 :] + tail)
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 201, body
    assert served_twice.proc.wait(timeout=60) == 0
    listed = server.vigor("release", "list", "--product", "acme-erp")
    assert "1.0.0" in listed.stdout, listed.stdout + listed.stderr


def _metrics_dir(master: int) -> Path:
    """The directory the workers count in: the files they map (gunicorn rewrites the
    master's environment block with its process title, so it cannot be read there)."""
    workers = subprocess.run(
        ["pgrep", "-P", str(master)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in workers:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if "/counter_" in line and line.endswith(".db"):
                return Path(line.split()[-1]).parent
    raise AssertionError("the workers count in no metrics directory")


def _livez_count(scraped: str) -> float:
    """vigor_http_requests_total{route="/livez",method="GET",status="200"} (labels in any order)."""
    for line in scraped.splitlines():
        labels, _, value = line.partition("} ")
        if labels.startswith("vigor_http_requests_total{") and all(
            pair in labels for pair in ('route="/livez"', 'method="GET"', 'status="200"')
        ):
            return float(value)
    raise AssertionError(scraped[:2000])


def _livez_per_worker(directory: Path) -> dict[str, float]:
    """``/livez`` requests each worker counted, by its metrics file."""
    per_worker = {}
    for path in directory.glob("counter_*.db"):
        counts = MmapedDict(str(path), read_mode=True)
        try:
            per_worker[path.name] = sum(
                value
                for key, value, _ in counts.read_all_values()
                if '"/livez"' in key and "vigor_http_requests" in key
            )
        finally:
            counts.close()
    return per_worker


def test_metrics_counted_by_two_workers_add_up(served_twice: Served) -> None:
    server = served_twice.server
    directory = _metrics_dir(served_twice.proc.pid)
    total = 400

    def hammer(count: int) -> None:
        for _ in range(count):  # a new connection each: the workers take turns accepting
            with urllib.request.urlopen(server.url + "/livez", timeout=10) as answer:
                assert answer.status == 200

    threads = [threading.Thread(target=hammer, args=(total // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_worker = _livez_per_worker(directory)
    served_by = {name: count for name, count in per_worker.items() if count}
    assert len(served_by) == 2, per_worker  # both workers answered some
    assert sum(served_by.values()) == total
    for _ in range(6):  # whichever worker answers the scrape, it counts both
        with urllib.request.urlopen(server.url + "/metrics", timeout=10) as answer:
            scraped = answer.read().decode()
        assert _livez_count(scraped) == total
    assert os.path.isdir(directory)
    served_twice.stop()
    assert not directory.exists()  # each run starts fresh


def _listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` on this machine (state 0A in /proc/net/tcp*)."""
    listening = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                listening += 1
    return listening


def test_connections_opened_at_once_are_shared_by_the_workers(served_twice: Served) -> None:
    """Kept-alive connections opened together (a proxy's, a load generator's) fall on both
    workers, not all or most on one, which would then queue checks at its one core's limit."""
    server = served_twice.server
    assert _listening_sockets(server.port) == 2, "one socket per worker, none in the master"
    directory = _metrics_dir(served_twice.proc.pid)
    connections = [
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(64)
    ]
    try:
        for conn in connections:
            conn.connect()
        for conn in connections:
            conn.request("GET", "/livez")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200
    finally:
        for conn in connections:
            conn.close()
    per_worker = sorted(count for count in _livez_per_worker(directory).values() if count)
    assert sum(per_worker) == 64
    # The kernel spreads them by a hash: fewer than 16 of 64 on one worker has odds of 1 in 20,000.
    assert len(per_worker) == 2 and per_worker[0] >= 16, per_worker


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse-port"])
def test_serve_where_a_server_listens_already_is_one_line(
    initialised: LiveServer, reuse_port: bool
) -> None:
    """A second server on a port taken with SO_REUSEPORT would otherwise share it silently."""
    port = initialised.port
    with socket.socket() as taken:
        if reuse_port:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = initialised.vigor("serve", "--port", str(port))
    assert result.returncode == 1
    told = f"error: cannot serve on 127.0.0.1:{port}: another server listens there"
    assert result.stderr.strip() == told
    assert "Traceback" not in result.stdout + result.stderr
