"""The entitlement decision's cost per check, alone: ``select_offer`` then ``renewal_summary``,
as :func:`server.domain.checks.answer` calls them, over the bench/check.py sample.

Usage: python bench/decision.py DIR [--rounds 20]

DIR is a dataset kept by ``bench/check_profile.py --keep DIR`` (SQLite). Loads the product's
catalogue and the sample's licenses once, then times the two calls for every sample license
(installed 1.0.0 on linux-x86_64, stable, as the load test asks), and prints CPU µs per check,
with how many sample licenses are in each maintenance status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from packaging.version import Version
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from server.domain import offers
    from server.domain.catalog import load_catalog
    from server.domain.models import License, Product
    from server.domain.row_facts import license_facts
    from server.domain.secrets import secret_hash

    sample = json.loads((args.dir / "sample.json").read_text())
    engine = create_engine(f"sqlite:///{args.dir / 'bench.db'}")
    with Session(engine) as session:
        product = session.scalars(select(Product).where(Product.slug == "bench")).one()
        catalog = load_catalog(session, product, "")
        hashes = [secret_hash(key) for key, _ in sample]
        rows = {
            lic.key_hash: license_facts(lic)
            for lic in session.scalars(select(License).where(License.key_hash.in_(hashes)))
        }
    asked = [(rows[h], inst) for h, (_, inst) in zip(hashes, sample, strict=True)]
    installed = Version("1.0.0")
    now = datetime.now(UTC)

    def decide(lic: object, inst: str) -> offers.OfferResult:
        result = offers.select_offer(
            lic,  # type: ignore[arg-type]
            catalog.policy,
            catalog.index,
            installed_version=installed,
            platform="linux-x86_64",
            channel="stable",
            installation_id=inst,
            now=now,
        )
        offers.renewal_summary(
            lic,  # type: ignore[arg-type]
            catalog.policy,
            catalog.index,
            installed_version=installed,
            platform="linux-x86_64",
            channel="stable",
            now=now,
            status=result.status,
        )
        return result

    statuses = Counter(str(decide(lic, inst).status.status) for lic, inst in asked)
    start = time.process_time()
    for _ in range(args.rounds):
        for lic, inst in asked:
            decide(lic, inst)
    per_check = (time.process_time() - start) / (args.rounds * len(asked)) * 1e6
    print(f"releases: {len(catalog.index.newest_first)}; sample statuses: {dict(statuses)}")
    print(f"decision (select_offer + renewal_summary): {per_check:.1f} µs/check (CPU)")


if __name__ == "__main__":
    main()
