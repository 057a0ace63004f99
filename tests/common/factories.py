"""Factories: products, customers, contracts, licenses and releases in a few words."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from server.domain import customers, products, publishing
from server.domain.models import Customer, License, Product, Release
from server.services import Services


def tar_gz(files: dict[str, bytes | str], mode: int = 0o755) -> bytes:
    """A .tar.gz holding ``files`` (paths → contents); the same files give the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def app_archive(version: str) -> bytes:
    """A tiny runnable application: ``bin/app --version`` prints the version."""
    return tar_gz(
        {
            "bin/app": f"#!/bin/sh\necho app {version}\n",
            "VERSION": f"{version}\n",
        }
    )


def make_product(services: Services, slug: str = "acme-erp", **policy: object) -> Product:
    with services.db.sessions() as s:
        return products.add_product(s, slug, slug.title(), actor="test", **policy)  # type: ignore[arg-type]


def make_customer(
    services: Services,
    slug: str,
    *contracts: tuple[str, date, date],
    product: str | None = "acme-erp",
) -> Customer:
    """A customer with contracts given as (kind, starts_on, ends_on)."""
    with services.db.sessions() as s:
        customer = customers.add_customer(s, slug, slug.title(), actor="test")
        prod = products.get_product(s, product) if product else None
        for kind, start, end in contracts:
            customers.add_contract(s, customer, kind, start, end, actor="test", product=prod)
        return customer


def make_license(
    services: Services, customer: str, product: str = "acme-erp", **options: object
) -> str:
    with services.db.sessions() as s:
        _, key = customers.issue_license(
            s,
            customers.get_customer(s, customer),
            products.get_product(s, product),
            actor="test",
            **options,  # type: ignore[arg-type]
        )
    return key


def make_release(
    services: Services,
    tmp_path: Path,
    version: str,
    *,
    kind: str = "update",
    published_at: datetime | None = None,
    product: str = "acme-erp",
    platforms: tuple[str, ...] = ("linux-x86_64",),
    content: bytes | None = None,
    **fields: object,
) -> Release:
    incoming = []
    for platform in platforms:
        path = tmp_path / f"{product}-{version}-{platform}.tar.gz"
        path.write_bytes(content if content is not None else app_archive(version))
        incoming.append(publishing.PathArtifact(platform, path))
    spec = publishing.ReleaseSpec(
        product=product,
        version=version,
        kind=kind,
        published_at=published_at,
        platforms=platforms,
        **fields,
    )  # type: ignore[arg-type]
    with services.db.sessions() as s:
        return publishing.publish(
            s,
            services.store,
            services.signer("release"),
            spec,
            incoming,
            actor="test",
            max_size=10**9,
        )


def make_release_history(services: Services, tmp_path: Path) -> None:
    """acme-erp's history as the portal tests read it: update 1.0.0 300 days ago, critical
    security revision 1.1.0 30 days ago, new version 2.0.0 5 days ago."""
    now = datetime.now(UTC)
    make_release(services, tmp_path, "1.0.0", published_at=now - timedelta(days=300))
    make_release(
        services,
        tmp_path,
        "1.1.0",
        kind="security",
        severity="critical",
        published_at=now - timedelta(days=30),
    )
    make_release(services, tmp_path, "2.0.0", kind="version", published_at=now - timedelta(days=5))


def license_row(services: Services, key: str) -> License:
    with services.db.sessions() as s:
        return customers.find_license(s, key)


def make_covered_license(services: Services, tmp_path: Path, version: str = "1.1.0") -> str:
    """The smallest world an update check offers something in: product acme-erp with release
    ``version``, customer initech under maintenance (from 10 days ago for 100 more), and the key
    of initech's license."""
    make_product(services)
    make_release(services, tmp_path, version)
    today = datetime.now(UTC).date()
    make_customer(
        services,
        "initech",
        ("maintenance", today - timedelta(days=10), today + timedelta(days=100)),
    )
    return make_license(services, "initech")
