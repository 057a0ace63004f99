"""Importing a customer base from CSV vs reading the same file alone, in the same run.

Usage: python bench/import.py [--customers 10000] [--postgres]

The file has one row per customer: a maintenance contract, an existing license key in another
system's format and one installation. The baseline generates the CSV and parses it (every row
read and validated: the work no import can skip); the import is ``vigor import customers`` end
to end on a migrated database (SQLite by default, PostgreSQL with ``--postgres``): parse, look
everything up, insert customers, contracts, licenses, installations and their audit events in one
transaction. Then the same file again, which must change nothing. Goal: under 60 s for 10,000.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.db import Database
from server.domain import customer_import, products
from server.domain.csv_input import read_table
from server.domain.models import utcnow
from tests.common.import_files import customers_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    data = customers_csv(args.customers, installations=True).encode()
    now = utcnow()
    rows = read_table(data, customer_import.COLUMNS).rows
    parsed = [customer_import.parse_row(row, now) for row in rows]
    baseline = time.perf_counter() - start
    assert all(parts is not None for parts, _ in parsed)

    with tempfile.TemporaryDirectory() as tmp:
        cluster = None
        if args.postgres:
            from tests.common.postgres import PostgresCluster

            cluster = PostgresCluster()
            cluster.start()
            url = cluster.create_database("vigor_bench_import")
        else:
            url = f"sqlite:///{tmp}/vigor.db"
        db = Database(url)
        try:
            db.upgrade()
            with db.session() as session:
                products.add_product(session, "acme-erp", "Acme ERP", actor="bench")
            start = time.perf_counter()
            data = customers_csv(args.customers, installations=True).encode()
            with db.session() as session:
                report = customer_import.import_customers(
                    session, data, actor="bench", now=utcnow(), source="bench.csv"
                )
            elapsed = time.perf_counter() - start
            assert report.applied and not report.errors, report.errors[:3]
            start = time.perf_counter()
            with db.session() as session:
                again = customer_import.import_customers(
                    session, data, actor="bench", now=utcnow(), source="bench.csv"
                )
            rerun = time.perf_counter() - start
            assert not again.applied and again.changes == 0
        finally:
            db.dispose()
            if cluster is not None:
                cluster.stop()

    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"customers: {args.customers:,} ({database}); {report.summary()}")
    print(f"baseline (generate + parse the CSV): {baseline:.2f} s")
    print(
        f"import, one transaction:             {elapsed:.2f} s  ({elapsed / baseline:.1f}x baseline)"
    )
    print(f"re-import, nothing changed:          {rerun:.2f} s  ({rerun / baseline:.1f}x baseline)")
    print(f"goal: import under 60 s: {'met' if elapsed < 60 else 'MISSED'}")


if __name__ == "__main__":
    main()
