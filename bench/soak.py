"""Soak of the production recipe: the check rate it sustains, then hours-like steady load.

Usage: python bench/soak.py [--minutes 10] [--licenses 500] [--connections 64]
                            [--probe-seconds 15] [--sample-seconds 30]

Starts the site of ``deploy/`` exactly as tests/e2e/test_deploy.py does (tests/common/deploy.py:
PostgreSQL, moto's S3 server, Redis, two ``vigor serve`` processes and ``vigor worker`` from the
systemd units' ExecStart with the environment file, nginx with ``deploy/nginx/vigor.conf`` over
TLS), publishes a release through nginx and issues licenses. Then, with wrk over https through
nginx (``POST /api/v1/check``, each license its own installation):

1. the maximum: ``--connections`` connections as fast as they go for ``--probe-seconds``;
2. the soak: half that rate (wrk paces each connection with its ``delay`` hook) for
   ``--minutes``, in samples of ``--sample-seconds``, each printing its rate, p99 and errors
   and the RSS of every Vigor process (each gunicorn master and worker, and the worker);
3. the totals: errors (non-2xx answers, socket errors, timeouts), p99 over the samples, and
   RSS at start, end and maximum per process.

The rate limits are raised as in the e2e test: wrk's few connections come from one address.
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench._harness import ROOT, status_kib
from bench._wrk import CheckScript, paced
from bench._wrk import run as wrk
from tests.common.deploy import Backing, Site

PRODUCT = "acme-erp"
LIMITS = {
    "VIGOR_RATE_LIMIT_CHECK": "100000000/minute",
    "VIGOR_RATE_LIMIT_CHECK_ADDRESS": "100000000/minute",
}


def build(site: Site, licenses: int) -> list[tuple[str, str]]:
    """A product, a customer under maintenance with ``licenses`` licenses, a release published
    through nginx; returns (license key, installation id) pairs."""
    from server.db import Database
    from server.domain import api_tokens, customers, products
    from server.domain.vocabulary import ContractKind

    db = Database(site.backing.database_url)
    today = date.today()
    sample = []
    try:
        with db.session() as session:
            product = products.add_product(session, PRODUCT, "Acme ERP", actor="soak")
            customer = customers.add_customer(session, "initech", "Initech", actor="soak")
            customers.add_contract(
                session,
                customer,
                ContractKind.MAINTENANCE,
                today - timedelta(days=30),
                today + timedelta(days=365),
                actor="soak",
                product=product,
            )
            for n in range(licenses):
                _, key = customers.issue_license(session, customer, product, actor="soak")
                sample.append((key, f"soak-installation-{n:06d}"))
            _, token = api_tokens.create_token(session, "soak", actor="soak")
    finally:
        db.dispose()
    http = requests.Session()
    http.verify = str(site.certificate)
    http.trust_env = False
    published = http.post(
        f"{site.public_url}/api/v1/admin/releases",
        headers={"Authorization": f"Bearer {token}"},
        data={"product": PRODUCT, "version": "1.0.0", "kind": "update"},
        files={"artifact.linux-x86_64": ("acme-erp-1.0.0.tar", secrets.token_bytes(1 << 20))},
        timeout=120,
    )
    if published.status_code != 201:
        raise SystemExit(f"publish failed: {published.status_code} {published.text}")
    return sample


def vigor_processes(site: Site) -> dict[str, int]:
    """Every Vigor process by a readable name: each master, its workers, the worker."""
    found = {}
    for name, proc in site.processes.items():
        label = f"serve:{name}" if name.isdigit() else name
        found[f"{label} master"] = proc.pid
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for n, pid in enumerate(sorted(int(c) for c in children)):
            found[f"{label} worker{n + 1}"] = pid
    return found


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    return {name: status_kib(pid, "VmRSS") / 1024 for name, pid in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--licenses", type=int, default=500)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--probe-seconds", type=int, default=15)
    parser.add_argument("--sample-seconds", type=int, default=30)
    args = parser.parse_args()

    from tests.common.postgres import PostgresCluster
    from tests.common.redis import RedisServer
    from tests.common.s3server import S3Server

    with tempfile.TemporaryDirectory(prefix="vigor-soak-", dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        cluster, s3, redis, site = PostgresCluster(), S3Server(), None, None
        cluster.start()
        try:
            s3.start()
            redis = RedisServer()
            backing = Backing(
                database_url=cluster.create_database("vigor"),
                s3_endpoint=s3.endpoint_url,
                s3_bucket=s3.make_bucket(),
                s3_region=s3.region,
                s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key,
                redis_url=redis.url,
            )
            site = Site(work / "site", backing, overrides=LIMITS)
            serve_help = site.vigor("serve", "--help").stdout
            site.strip = tuple(
                o for o in ("--threads", "--graceful-timeout") if o not in serve_help
            )
            init = site.vigor("init")
            if init.returncode != 0:
                raise SystemExit(f"vigor init failed: {init.stderr}")
            has_worker = site.vigor("worker", "--help").returncode == 0
            for port in site.vigor_ports:
                site.start_serving(port)
            if has_worker:
                site.start_worker()
            site.start_nginx()
            sample = build(site, args.licenses)
            sample_file = work / "sample.txt"
            sample_file.write_text("".join(f"{k} {i}\n" for k, i in sample))
            run(site, work, sample_file, args, has_worker)
        finally:
            if site is not None:
                site.stop()
            if redis is not None:
                redis.stop()
            s3.stop()
            cluster.stop()


def run(
    site: Site, work: Path, sample_file: Path, args: argparse.Namespace, has_worker: bool
) -> None:
    c = args.connections
    print(
        f"site: nginx (TLS) -> 2 x vigor serve, {'a' if has_worker else 'no'} vigor worker; "
        f"PostgreSQL, moto S3, Redis; {args.licenses} licenses",
        flush=True,
    )
    url = site.public_url
    checks = CheckScript(work, sample_file, PRODUCT, "0.9.0")
    wrk(url, checks.write(), c, 3)  # warm-up: caches, connections
    peak = wrk(url, checks.write(), c, args.probe_seconds)
    print(
        f"maximum: {peak.rps:.0f} checks/s, p99 {peak.p99:.1f} ms, "
        f"{peak.errors} errors {peak.detail} ({c} connections, {args.probe_seconds} s)",
        flush=True,
    )
    target = peak.rps / 2
    script = paced(url, checks, c, target)
    pids = vigor_processes(site)
    start_rss = rss_mib(pids)
    max_rss = dict(start_rss)
    total_errors, total_count, p99s = 0.0, 0.0, []
    samples = max(1, round(args.minutes * 60 / args.sample_seconds))
    print(f"soak: target {target:.0f} checks/s for {args.minutes:g} min, {samples} samples")
    began = time.monotonic()
    for _ in range(samples):
        result = wrk(url, script, c, args.sample_seconds)
        now_rss = rss_mib(pids)
        for name, value in now_rss.items():
            max_rss[name] = max(max_rss[name], value)
        total_errors += result.errors
        total_count += result.count
        p99s.append(result.p99)
        print(
            f"  [{(time.monotonic() - began) / 60:5.1f} min] {result.rps:6.0f} checks/s  "
            f"p99 {result.p99:6.1f} ms  errors {result.errors} {result.detail}  "
            f"RSS MiB {' '.join(f'{v:.0f}' for v in now_rss.values())}",
            flush=True,
        )
    end_rss = rss_mib(pids)
    print(f"errors: {total_errors:.0f} of {total_count:.0f} checks")
    print(
        f"p99: worst sample {max(p99s):.1f} ms, median sample {sorted(p99s)[len(p99s) // 2]:.1f} ms"
    )
    print("RSS MiB per process: start / end / max (growth)")
    for name in pids:
        print(
            f"  {name:22} {start_rss[name]:6.1f} / {end_rss[name]:6.1f} / {max_rss[name]:6.1f}"
            f"  ({end_rss[name] - start_rss[name]:+.1f})"
        )
    statuses = Counter(re.findall(r'"POST /api/v1/check HTTP/[\d.]+" (\d{3}) ', access_log(site)))
    print(f"answers to checks in nginx's access log: {dict(sorted(statuses.items()))}")
    logged = re.findall(r"\[(?:error|crit|alert|emerg)\].*", site.nginx_log())
    print(f"nginx error log: {len(logged)} errors", *logged[:5], sep="\n  ")


def access_log(site: Site) -> str:
    return (site.nginx_dir / "access.log").read_text(errors="replace")


if __name__ == "__main__":
    main()
