"""The demo's story as data: the product's release history, the customers and their contracts
(days relative to the day the demo is loaded), the installed base each customer runs, the demo
accounts, and the application tarball every release ships."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    ContractKind,
    ReleaseKind,
    Severity,
)

PRODUCT = "acme-erp"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "vigor-demo-admin"  # noqa: S105 - printed by the demo; production refuses demo mode
# A person at Hooli (lapsed maintenance, reads Spanish) who signs in to the portal.
PORTAL_CUSTOMER = "hooli"
PORTAL_EMAIL = "it@hooli.example"
PORTAL_PASSWORD = "vigor-demo-portal"  # noqa: S105 - printed by the demo, like the admin's
ACTOR = "demo"


@dataclass(frozen=True)
class DemoRelease:
    version: str
    kind: ReleaseKind
    days_ago: int
    severity: Severity | None = None
    notes: str = ""
    channel: str = DEFAULT_CHANNEL
    customers: tuple[str, ...] = ()
    min_from: str | None = None


HISTORY = (
    DemoRelease("3.8.0", ReleaseKind.VERSION, 900, notes="Multi-currency invoicing."),
    DemoRelease("3.9.0", ReleaseKind.UPDATE, 700, notes="Faster month-end closing."),
    DemoRelease("4.0.0", ReleaseKind.VERSION, 560, notes="New inventory module and web client."),
    DemoRelease("4.0.1", ReleaseKind.UPDATE, 500, notes="Fixes to stock valuation reports."),
    DemoRelease("4.1.0", ReleaseKind.UPDATE, 400, notes="Bank reconciliation import (CAMT.053)."),
    DemoRelease(
        "4.1.1",
        ReleaseKind.SECURITY,
        330,
        Severity.CRITICAL,
        "Fixes an authentication bypass in the web client (critical: the application "
        "cannot be used safely until applied).",
    ),
    DemoRelease("4.2.0", ReleaseKind.UPDATE, 240, notes="Purchase approval workflow."),
    DemoRelease(
        "4.2.0+globex.1",
        ReleaseKind.UPDATE,
        230,
        notes="Globex customs-declaration export.",
        channel="globex",
        customers=("globex",),
    ),
    DemoRelease(
        "4.2.1",
        ReleaseKind.SECURITY,
        150,
        Severity.SERIOUS,
        "Fixes a privilege escalation in the payroll module (serious).",
    ),
    DemoRelease(
        "4.3.0", ReleaseKind.UPDATE, 90, notes="Payroll for part-time contracts.", min_from="4.1.0"
    ),
    DemoRelease("5.0.0", ReleaseKind.VERSION, 40, notes="New reporting engine and REST API."),
    DemoRelease(
        "5.0.1",
        ReleaseKind.SECURITY,
        6,
        Severity.MINOR,
        "Fixes a cross-site scripting issue in report titles.",
    ),
)


@dataclass(frozen=True)
class DemoCustomer:
    slug: str
    name: str
    # (kind, starts days from today, ends days from today); negative = in the past
    contracts: tuple[tuple[ContractKind, int, int], ...]
    language: str = ""  # "": each reader's browser or agent decides


CUSTOMERS = (
    DemoCustomer("initech", "Initech", ((ContractKind.MAINTENANCE, -800, 300),)),
    DemoCustomer("umbrella", "Umbrella Corporation", ((ContractKind.MAINTENANCE, -353, 12),)),
    DemoCustomer("hooli", "Hooli", ((ContractKind.MAINTENANCE, -900, -300),), language="es"),
    DemoCustomer("vandelay", "Vandelay Industries", ()),
    DemoCustomer(
        "globex",
        "Globex",
        ((ContractKind.MAINTENANCE, -500, 200), (ContractKind.CUSTOMIZATION, -500, 200)),
    ),
)


@dataclass(frozen=True)
class Fleet:
    """A customer's installations and how diligently they are kept up to date."""

    customer: str
    size: int
    on_time: float  # chance that a security revision is applied within its deadline
    takes_versions: float  # chance of moving to a new major version
    stuck: int = 0  # installations that stop updating at some point (but keep checking in)
    silent: int = 0  # installations that stop checking in at some point
    channel: str = DEFAULT_CHANNEL
    platforms: tuple[str, ...] = ("linux-x86_64", "windows-x86_64")


FLEETS = (
    Fleet("initech", 14, on_time=0.9, takes_versions=0.8, stuck=1, silent=1),
    Fleet("umbrella", 8, on_time=0.55, takes_versions=0.5, stuck=2),
    Fleet("hooli", 5, on_time=0.7, takes_versions=0.6, platforms=("windows-x86_64",)),
    Fleet("vandelay", 2, on_time=0.0, takes_versions=0.0, platforms=("linux-x86_64",)),
    Fleet("globex", 4, on_time=0.95, takes_versions=1.0, channel="globex"),
)


def demo_archive(version: str) -> bytes:
    """A small, deterministic .tar.gz of an application: a launcher, a library, data."""
    files = {
        "VERSION": f"{version}\n".encode(),
        "bin/acme-erp": (
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "acme-erp {version}"; exit 0; fi\n'
            f'echo "Acme ERP {version} is running"\n'
        ).encode(),
        "lib/acme/core.py": (f"VERSION = {version!r}\n" + "# ledger rules\n" * 200).encode(),
        "share/acme/reports.csv": "".join(f"report-{i},{version}\n" for i in range(500)).encode(),
        # The bulk of a real application, unchanged between releases: what delta patches skip.
        **{
            f"lib/acme/modules/ledger_{n:02d}.py": "".join(
                f"def rule_{n}_{i}(entry):\n    return entry.amount * {(n * 7919 + i * 104729) % 1000} / 1000\n"
                for i in range(60)
            ).encode()
            for n in range(40)
        },
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"acme-erp-{version}/{name}")
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
