"""CSV files to import, as another system would export them (docs/import.md)."""

from __future__ import annotations

import hashlib

from server.domain.csv_input import write_table
from server.domain.customer_import import COLUMNS


def legacy_key(n: int) -> str:
    """A license key in another system's format (not Vigor's ``vgl_…``), stable per ``n``."""
    digest = hashlib.sha256(f"legacy-{n}".encode()).hexdigest().upper()
    return "-".join(["LEG", digest[:5], digest[5:10], digest[10:15], digest[15:20]])


def customers_csv(
    count: int,
    product: str = "acme-erp",
    *,
    starts: str = "2026-01-01",
    ends: str = "2026-12-31",
    installations: bool = False,
) -> str:
    """``count`` customers, each with a maintenance contract for ``product`` and an existing
    key (and, with ``installations``, one installation on 4.0.0)."""
    rows = []
    for n in range(count):
        row = {
            "customer": f"cust-{n:05}",
            "name": f"Customer {n} S.A.",
            "email": f"it@cust{n}.example",
            "language": "es" if n % 2 else "en",
            "product": product,
            "contract_from": starts,
            "contract_to": ends,
            "license_key": legacy_key(n),
            "max_installations": "3",
        }
        if installations:
            row |= {
                "installation_id": f"legacy-inst-{n:08}",
                "version": "4.0.0",
                "platform": "linux-x86_64",
                "last_seen": "2026-02-01",
            }
        rows.append(row)
    return write_table(COLUMNS, ([r.get(c, "") for c in COLUMNS] for r in rows))
