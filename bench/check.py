"""Update-check throughput and latency at scale, against a bare Flask baseline in the same run.

Usage: python bench/check.py [--db sqlite|postgresql|both] [--duration 10] [--licenses 100000]
                             [--installations 1000000] [--releases 2000] [--threads 8]
                             [--rounds 5]

For each database: builds a scale dataset (licenses, installations, releases), serves it with
gunicorn the way ``vigor serve`` does (2 workers of its threaded worker class, ``--threads`` each,
8 by default as deploy/ runs it; ``--threads 1``: sync workers, as this bench used before) and
drives ``POST /api/v1/check`` with wrk on loopback, then does the same for two baselines of
bench/bare_app.py served the same way (a constant JSON answer, and the *floor*: one indexed
license lookup and one Ed25519 signature). The check and the floor run ``--rounds`` times,
alternating, both servers up throughout, so that each round's pair sees the machine in the same
state; a figure is the median of the rounds, a ratio the median of the rounds' ratios (all of
them printed: on a shared machine one run can be half as fast as the next). Prints:

- the maximum rates with 64 connections and their ratios: check/floor (goal ≥ 0.90),
  check/bare (goal ≥ 0.70). The p99 of these saturated runs is printed too, but it is queueing
  (about 64 connections / rate, see bench/_wrk.py), not the time a check takes;
- the p99 latency with the check and the floor each offered half the check's maximum rate
  (goal < 50 ms): what clients see under a heavy but sustainable load (64 connections, each
  pausing between checks, their first checks spread over the first pause: bench/_wrk.py);
- the check latency with 1,000 installations against ``--installations`` (goal ≤ 1.2x),
  measured on one connection.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select

from bench._harness import ROOT, Gunicorn
from bench._wrk import CheckScript, WrkRun, paced, run

if TYPE_CHECKING:
    from tests.common.postgres import PostgresCluster

SAMPLE = 2000  # (license, installation) pairs the load generator cycles through


def build(url: str, work: Path, licenses: int, releases: int) -> list[tuple[str, str]]:
    """Product, releases, customers, contracts and licenses; returns sample (key, installation)."""
    from server.bootstrap import ensure_trust
    from server.config import Settings
    from server.domain import products, publishing
    from server.domain.models import Contract, Customer, License
    from server.domain.secrets import display_prefix, new_secret, secret_hash
    from server.services import Services

    settings = Settings(
        instance_dir=work / "instance",
        database_url=url,
        storage_root=work / "releases",
        keys_dir=work / "instance" / "keys",
        secret_key=secrets.token_urlsafe(32),
    )
    services = Services.from_settings(settings)
    services.db.upgrade()
    ensure_trust(services)
    signer = services.signer("release")
    now = datetime.now(UTC)
    with services.db.sessions() as s:
        product = products.add_product(s, "bench", "Bench", actor="bench")
        blob_dir = work / "blobs"
        blob_dir.mkdir()
        for i in range(releases):
            major, minor = divmod(i, 100)
            version = f"{major + 1}.{minor}.0"
            path = blob_dir / f"{version}.tar.gz"
            path.write_bytes(f"artifact {version}".encode())
            spec = publishing.ReleaseSpec(
                product="bench",
                version=version,
                kind="security" if i % 10 == 9 else "update",
                severity="serious" if i % 10 == 9 else None,
                platforms=("linux-x86_64",),
                published_at=now - timedelta(days=releases - i, hours=1),
            )
            publishing.publish(
                s,
                services.store,
                signer,
                spec,
                [publishing.PathArtifact("linux-x86_64", path)],
                actor="bench",
                max_size=10**6,
            )
        product_id = product.id
    sample: list[tuple[str, str]] = []
    customers = max(1, licenses // 10)
    with services.db.engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [
                {"slug": f"c{i}", "name": f"Customer {i}", "language": "en", "created_at": now}
                for i in range(customers)
            ],
        )
        ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
        today = date.today()
        conn.execute(
            insert(Contract),
            [
                {
                    "customer_id": cid,
                    "kind": "maintenance",
                    "product_id": product_id,
                    "note": "",
                    "starts_on": today - timedelta(days=300 + n % 200),
                    "ends_on": today + timedelta(days=(n % 400) - 100),
                    "created_at": now,
                }
                for n, cid in enumerate(ids)
            ],
        )
        rows = []
        for n in range(licenses):
            key = new_secret("vgl")
            if n < SAMPLE:  # the first licenses: they hold installations in every dataset size
                sample.append((key, f"bench-installation-{n:08d}-00"))
            rows.append(
                {
                    "customer_id": ids[n % len(ids)],
                    "product_id": product_id,
                    "key_hash": secret_hash(key),
                    "key_prefix": display_prefix(key),
                    "label": "",
                    "status": "active",
                    "created_at": now,
                }
            )
            if len(rows) == 20_000:
                conn.execute(insert(License), rows)
                rows = []
        if rows:
            conn.execute(insert(License), rows)
    services.db.dispose()
    return sample


def set_installations(url: str, total: int, licenses: int) -> None:
    """Exactly ``total`` installations: ``installation-<license n>-<k>`` spread over the licenses."""
    from server.db import Database
    from server.domain.models import Installation, License

    db = Database(url)
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(delete(Installation))
        license_ids = list(conn.scalars(select(License.id).order_by(License.id)))
        per = max(1, total // len(license_ids))
        rows = []
        made = 0
        for n, lid in enumerate(license_ids):
            for k in range(per):
                if made == total:
                    break
                rows.append(
                    {
                        "license_id": lid,
                        "uid": f"bench-installation-{n:08d}-{k:02d}",
                        "version": "1.0.0",
                        "platform": "linux-x86_64",
                        "channel": "stable",
                        "first_seen": now,
                        "last_seen": now,
                    }
                )
                made += 1
                if len(rows) == 50_000:
                    conn.execute(insert(Installation), rows)
                    rows = []
        if rows:
            conn.execute(insert(Installation), rows)
        count = conn.scalar(select(func.count()).select_from(Installation))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    db.dispose()
    print(f"  installations: {count:,}", flush=True)


def measured(url: str, script: Path | None, duration: int) -> WrkRun:
    """A saturating wrk run with 64 connections, after a 2-second warm-up (caches, connections);
    any error ends the bench."""
    run(url, script, 64, 2)
    return _measured_run(url, script, duration)


def _measured_run(url: str, script: Path | None, duration: int) -> WrkRun:
    result = run(url, script, 64, duration)
    if result.errors:
        raise SystemExit(f"errors during the run of {url}: {result.detail}")
    return result


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    """User and system CPU seconds each of ``pids`` has used so far (gone ones left out)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def measured_cpu(
    server: Gunicorn,
    path: str,
    script: Path | None,
    duration: int,
    database_pids: Callable[[], list[int]],
    *,
    warm_up: bool = True,
) -> WrkRun:
    """:func:`measured` (its warm-up unless ``warm_up`` is false: the server ran the same load
    just before), with the CPU spent per answer (µs) by the server's workers and by the
    database's processes (PostgreSQL's backends) in ``cpu_per_request``. On a machine shared
    with other work the rates follow that work's load; the CPU an answer costs much less."""
    if warm_up:
        run(server.url + path, script, 64, 2)

    def pids() -> list[int]:
        return server.worker_pids() + database_pids()

    before = cpu_by_process(pids())
    result = _measured_run(server.url + path, script, duration)
    after = cpu_by_process(pids())
    spent = sum(used - before.get(pid, 0.0) for pid, used in after.items())
    result.cpu_per_request = spent / max(1, result.count) * 1e6
    return result


def postgres_backends(cluster: PostgresCluster | None) -> Callable[[], list[int]]:
    """The processes of ``cluster`` (none for SQLite, which runs inside the workers)."""
    if cluster is None:
        return list
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])

    def backends() -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        )
        return [postmaster, *(int(p) for p in out.stdout.split())]

    return backends


def single_latency(url: str, sample: list[tuple[str, str]], count: int = 400) -> float:
    """Median latency in ms of sequential checks on one connection."""
    import http.client
    import secrets

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    times = []
    for i in range(count):
        key, inst = sample[i % len(sample)]
        body = json.dumps(
            {
                "product": "bench",
                "version": "1.0.0",
                "platform": "linux-x86_64",
                "channel": "stable",
                "installation_id": inst,
                "nonce": secrets.token_hex(16),
            }
        )
        start = time.perf_counter()
        conn.request(
            "POST",
            "/api/v1/check",
            body,
            {"Authorization": f"License {key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        if response.status != 200:
            raise SystemExit(f"check failed: {response.status}")
    times.sort()
    return times[len(times) // 2] * 1000


def run_one(db: str, args: argparse.Namespace, work: Path) -> Figures:
    cluster = None
    if db == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        from tests.common.postgres import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
        url = cluster.create_database("bench")
    try:
        print(f"[{db}] building {args.licenses:,} licenses, {args.releases:,} releases", flush=True)
        started = time.monotonic()
        sample = build(url, work, args.licenses, args.releases)
        sample_file = work / "sample.txt"
        sample_file.write_text("".join(f"{k} {i}\n" for k, i in sample))
        checks = CheckScript(work, sample_file, "bench", "1.0.0")
        floors = CheckScript(work, sample_file, "bench", "1.0.0", path="/floor")
        env = {
            "VIGOR_INSTANCE_DIR": str(work / "instance"),
            "VIGOR_STORAGE_ROOT": str(work / "releases"),
            "VIGOR_SECRET_KEY": secrets.token_urlsafe(32),
            "VIGOR_DATABASE_URL": url,
            "VIGOR_RATE_LIMIT_CHECK": "10000000/minute",
            "VIGOR_RATE_LIMIT_CHECK_ADDRESS": "10000000/minute",
        }
        set_installations(url, 1000, args.licenses)
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
        small = _latency(env, sample, args.threads)
        set_installations(url, args.installations, args.licenses)
        large = _latency(env, sample, args.threads)
        database = postgres_backends(cluster)
        server = Gunicorn("wsgi:app", env, workers=2, threads=args.threads)
        bare = Gunicorn(
            "bench.bare_app:app", {"VIGOR_DATABASE_URL": url}, workers=2, threads=args.threads
        )
        try:
            constant = measured_cpu(bare, "/constant", None, args.duration, database)
            check_script, floor_script = checks.write(), floors.write()
            saturated = [
                (
                    measured_cpu(server, "", check_script, args.duration, database, warm_up=not i),
                    measured_cpu(bare, "", floor_script, args.duration, database, warm_up=not i),
                )
                for i in range(args.rounds)
            ]
            half = median(check.rps for check, _ in saturated) / 2
            check_paced = paced(server.url, checks, 64, half)
            floor_paced = paced(bare.url, floors, 64, half)
            paced_runs = [
                (
                    _measured_run(server.url, check_paced, args.duration),
                    _measured_run(bare.url, floor_paced, args.duration),
                )
                for _ in range(args.rounds)
            ]
        finally:
            server.stop()
            bare.stop()
    finally:
        if cluster:
            cluster.stop()
    return Figures(saturated, paced_runs, constant, half, small, large)


@dataclass(frozen=True)
class Figures:
    """One database's runs: ``saturated`` and ``paced`` hold (check, floor) pairs, one per
    round, each pair run back to back so that both see the machine in the same state."""

    saturated: list[tuple[WrkRun, WrkRun]]
    paced: list[tuple[WrkRun, WrkRun]]
    bare: WrkRun
    half_rps: float
    latency_small: float
    latency_large: float

    def check(self, field: str) -> float:
        return float(median(getattr(check, field) for check, _ in self.saturated))

    def floor(self, field: str) -> float:
        return float(median(getattr(floor, field) for _, floor in self.saturated))

    def ratios(self, field: str, *, inverse: bool = False) -> list[float]:
        """check/floor (floor/check when ``inverse``) of ``field`` in each round."""
        pairs = [(getattr(c, field), getattr(f, field)) for c, f in self.saturated]
        return sorted(f / c if inverse else c / f for c, f in pairs)


def _spread(values: list[float]) -> str:
    return f"median {median(values):.2f}, rounds {' '.join(f'{v:.2f}' for v in values)}"


def _latency(env: dict[str, str], sample: list[tuple[str, str]], threads: int) -> float:
    server = Gunicorn("wsgi:app", env, workers=1, threads=threads)
    try:
        single_latency(server.url, sample, 100)  # warm caches
        return single_latency(server.url, sample)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--licenses", type=int, default=100_000)
    parser.add_argument("--installations", type=int, default=1_000_000)
    parser.add_argument("--releases", type=int, default=2000)
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per worker (1: gunicorn's sync workers)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="check and floor runs, alternating (the figures are their medians)",
    )
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for db in dbs:
        with tempfile.TemporaryDirectory(prefix="vigor-bench-", dir=ROOT / "bench") as tmp:
            r = run_one(db, args, Path(tmp))
        bare = r.bare
        print(f"[{db}] bare Flask:  {bare.rps:8.0f} req/s  p99 {bare.p99:6.1f} ms")
        print(
            f"[{db}] floor:       {r.floor('rps'):8.0f} req/s  p99 {r.floor('p99'):6.1f} ms"
            "  (one indexed lookup + one Ed25519 signature; medians of the rounds)"
        )
        print(f"[{db}] check:       {r.check('rps'):8.0f} req/s  p99 {r.check('p99'):6.1f} ms")
        print(f"[{db}] ratio check/floor: {_spread(r.ratios('rps'))} (goal >= 0.90)")
        print(f"[{db}] ratio check/bare: {r.check('rps') / bare.rps:.2f} (goal >= 0.70)")
        print(
            f"[{db}] server CPU per answer: bare {bare.cpu_per_request:.0f} µs, floor "
            f"{r.floor('cpu_per_request'):.0f} µs, check {r.check('cpu_per_request'):.0f} µs; "
            f"floor/check {_spread(r.ratios('cpu_per_request', inverse=True))}"
            " (the ratio above on a machine doing nothing else)"
        )
        check_p99 = sorted(check.p99 for check, _ in r.paced)
        floor_p99 = sorted(floor.p99 for _, floor in r.paced)
        print(
            f"[{db}] paced at half the check's maximum ({r.half_rps:.0f}/s offered): "
            f"check {median(check.rps for check, _ in r.paced):.0f}/s p99 {median(check_p99):.1f} ms "
            f"(goal < 50 ms; rounds {' '.join(f'{v:.1f}' for v in check_p99)}), "
            f"floor p99 {median(floor_p99):.1f} ms (rounds {' '.join(f'{v:.1f}' for v in floor_p99)})"
        )
        print(
            f"[{db}] single-connection latency: {r.latency_small:.2f} ms at 1,000 installations, "
            f"{r.latency_large:.2f} ms at {args.installations:,}: "
            f"x{r.latency_large / r.latency_small:.2f} (goal <= 1.2)",
            flush=True,
        )


if __name__ == "__main__":
    main()
