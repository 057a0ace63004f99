"""Where a check's time goes, in process: µs per check, SQL statements and round trips per check.

Usage: python bench/check_profile.py [--db sqlite|postgresql] [--checks 3000] [--profile]
                                     [--licenses 20000] [--installations 200000]
                                     [--releases 2000] [--keep DIR]

Builds the bench/check.py dataset (or reuses one kept with ``--keep DIR`` on SQLite), then
drives ``POST /api/v1/check`` through the app's WSGI callable, the way gunicorn calls it (no
test client, no sockets), cycling through the same (license, installation) sample as the load
test. Reports per check: wall and CPU µs, SQL statements executed and, on PostgreSQL,
client/server round trips counted from the libpq protocol trace. Then times the pieces on their
own: canonical JSON of a typical answer, one Ed25519 signature, and
the bare-app baselines (constant JSON, floor) through the same WSGI path. ``--profile`` prints
the top of a cProfile run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.check import build, set_installations


def environ(path: str, key: str, inst: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps(
        {
            "product": "bench",
            "version": "1.0.0",
            "platform": "linux-x86_64",
            "channel": "stable",
            "installation_id": inst,
            "nonce": secrets.token_hex(12),
        }
    ).encode()
    env = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"License {key}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.errors": sys.stderr,
    }
    return env, body


def call(app: Callable[..., Any], env: dict[str, Any], body: bytes) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, _headers: Any, _exc: Any = None) -> None:
        status.append(s)

    env = dict(env)
    env["wsgi.input"] = io.BytesIO(body)
    chunks = app(env, start_response)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0], data


class Counter:
    """SQL statements seen by an engine; PostgreSQL round trips counted from libpq's trace."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        self.trace_files: list[Path] = []
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._trace)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _trace(self, dbapi_connection: Any, _record: Any) -> None:
        path = Path(tempfile.mkstemp(prefix="vigor-pqtrace-")[1])
        self.trace_files.append(path)
        handle = path.open("w")
        dbapi_connection.pgconn.trace(handle.fileno())
        dbapi_connection._bench_trace = handle

    def round_trips(self) -> int:
        """Frontend messages that wait for the server: Sync (extended protocol) and Query."""
        total = 0
        for path in self.trace_files:
            for line in path.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) > 3 and parts[1] == "F" and parts[3] in ("Sync", "Query"):
                    total += 1
        return total

    def reset_traces(self) -> None:
        for path in self.trace_files:
            path.write_text("")


@contextmanager
def postgres_url() -> Iterator[str]:
    from tests.common.postgres import PostgresCluster

    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster.create_database("bench")
    finally:
        cluster.stop()


def _backend_cpu(db: Any) -> Callable[[], float | None]:
    """CPU seconds the PostgreSQL backend of the (single) pooled connection spends from now."""
    if db.engine.dialect.name != "postgresql":
        return lambda: None
    with db.engine.connect() as conn:  # the pool's one connection: checks run one at a time
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    start = cpu()
    return lambda: cpu() - start


def timed(fn: Callable[[], Any], n: int) -> float:
    """µs of this process's CPU per call (other load on the machine counts less than in wall)."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def limiter_us(db: Any, n: int, *, batched: bool = True) -> float:
    """CPU µs the rate limiter adds to a check (a license and an address counted): as the check
    counts (in the process, synced to the database once a second), or with a write every time."""
    from server.db.throttle import DatabaseWindows
    from server.web.ratelimit import BatchedWindows, hit

    def counted() -> list[tuple[str, str]]:
        return [
            ("license:" + secrets.token_hex(16), "10000000/minute"),
            ("address:127.0.0.1", "10000000/minute"),
        ]

    windows = BatchedWindows(DatabaseWindows(db)) if batched else DatabaseWindows(db)
    return timed(lambda: hit(windows, "bench", counted(), endpoint="bench", where="bench"), n)


def run(url: str, work: Path, sample: list[tuple[str, str]], args: argparse.Namespace) -> None:
    os.environ.update(
        {
            "VIGOR_INSTANCE_DIR": str(work / "instance"),
            "VIGOR_STORAGE_ROOT": str(work / "releases"),
            "VIGOR_SECRET_KEY": secrets.token_urlsafe(32),
            "VIGOR_DATABASE_URL": url,
            "VIGOR_RATE_LIMIT_CHECK": "10000000/minute",
            "VIGOR_RATE_LIMIT_CHECK_ADDRESS": "10000000/minute",
        }
    )
    import logging

    from server.app import create_app

    app = create_app()
    logging.getLogger().setLevel(logging.WARNING)
    services = app.extensions["vigor"]
    counter = Counter(services.db.engine)
    requests = [environ("/api/v1/check", k, i) for k, i in sample]
    for env, body in requests[:200]:  # warm: catalogue, signer, root, pool
        status, data = call(app, env, body)
        assert status.startswith("200"), (status, data[:300])
    n = args.checks
    counter.statements = 0
    counter.reset_traces()
    backend = _backend_cpu(services.db)
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(n):
        env, body = requests[k % len(requests)]
        call(app, env, body)
    per_check = (time.perf_counter() - start) / n * 1e6
    cpu_per_check = (time.process_time() - cpu) / n * 1e6
    print(f"check (in process, {n} checks): {per_check:7.0f} µs/check ({cpu_per_check:.0f} CPU)")
    print(f"  SQL statements/check:   {counter.statements / n:.2f}")
    if counter.trace_files:
        print(f"  PG round trips/check:   {counter.round_trips() / n:.2f}")
        print(f"  PG backend CPU/check:   {(backend() or 0) / n * 1e6:7.0f} µs (server side)")

    # The pieces on their own.
    from server.domain.trust import canonical_bytes, sign_document

    _, data = call(app, *requests[0])
    signed = json.loads(data)["signed"]
    signer = services.signer("check")
    print(f"  canonical JSON:         {timed(lambda: canonical_bytes(signed), 2000):7.1f} µs")
    print(f"  Ed25519 sign:           {timed(lambda: signer.sign(b'x' * 900), 2000):7.1f} µs")
    print(
        f"  sign_document:          {timed(lambda: sign_document(signed, [signer]), 2000):7.1f} µs"
    )
    print(f"  answer size:            {len(data)} bytes")
    print(f"  rate limiter, 2 keys:   {limiter_us(services.db, n):7.1f} µs counted here, synced")
    every = limiter_us(services.db, 500, batched=False)
    print(f"                          {every:7.1f} µs written to the database on every check")

    os.environ["VIGOR_DATABASE_URL"] = url
    from bench import bare_app

    bare = bare_app.app.wsgi_app
    constant_env = dict(requests[0][0], REQUEST_METHOD="GET", PATH_INFO="/constant")
    floor_requests = [environ("/floor", k, i) for k, i in sample]
    call(bare, constant_env, b"")
    for env, body in floor_requests[:200]:
        call(bare, env, body)
    bare_us = timed(lambda: call(bare, constant_env, b""), n)
    floor_us = timed(lambda: call(bare, *floor_requests[secrets.randbelow(len(sample))]), n)
    print(f"bare constant JSON:       {bare_us:7.0f} µs/request (CPU)")
    print(f"floor:                    {floor_us:7.0f} µs/request (CPU)")
    print(
        f"ratio check/bare (CPU):   {bare_us / per_check:.2f}; check/floor {floor_us / per_check:.2f}"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for k in range(n):
            env, body = requests[k % len(requests)]
            call(app, env, body)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    services.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--licenses", type=int, default=20_000)
    parser.add_argument("--installations", type=int, default=200_000)
    parser.add_argument("--releases", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", type=Path, help="SQLite only: build once into DIR, then reuse")
    args = parser.parse_args()
    if args.keep and args.db == "sqlite":
        work = args.keep.resolve()
        sample_file = work / "sample.json"
        url = f"sqlite:///{work / 'bench.db'}"
        if not sample_file.exists():
            work.mkdir(parents=True, exist_ok=True)
            sample = build(url, work, args.licenses, args.releases)
            set_installations(url, args.installations, args.licenses)
            sample_file.write_text(json.dumps(sample))
        sample = [tuple(s) for s in json.loads(sample_file.read_text())]
        run(url, work, sample, args)  # type: ignore[arg-type]
        return
    with tempfile.TemporaryDirectory(prefix="vigor-bench-") as tmp:
        work = Path(tmp)
        if args.db == "sqlite":
            url = f"sqlite:///{work / 'bench.db'}"
            sample = build(url, work, args.licenses, args.releases)
            set_installations(url, args.installations, args.licenses)
            run(url, work, sample, args)
        else:
            with postgres_url() as url:
                sample = build(url, work, args.licenses, args.releases)
                set_installations(url, args.installations, args.licenses)
                run(url, work, sample, args)


if __name__ == "__main__":
    main()
