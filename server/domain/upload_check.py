"""The upload form's pre-flight: every problem with a release's details, all at once, before
any file byte is sent — and the choices the form offers (channels, platforms, customers).

:func:`server.domain.publishing.validate_spec` stops at the first problem (the CLI and the API
answer one error); the form wants each field's problem beside the field, worded as the form
labels it, and the limits said in numbers. A version is taken as typed: one that PEP 440 would
store differently (``v6.1.0`` → ``6.1.0``) is refused here, saying so, rather than changed
silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain.models import Artifact, Customer, Product, Release
from server.domain.releases import MAX_VERSION_LENGTH
from server.domain.vocabulary import (
    ANY_PLATFORM,
    PLATFORM_RE,
    PLATFORMS,
    SLUG_RE,
    ReleaseKind,
    Severity,
    values,
)


@dataclass(frozen=True)
class UploadChoices:
    """What the form's pickers offer."""

    channels: list[str]
    platforms: list[str]
    customers: list[tuple[str, str]]  # (slug, name)


def choices(session: Session, default_channel: str) -> UploadChoices:
    channels = set(session.scalars(select(Release.channel).distinct())) | {default_channel}
    used = set(session.scalars(select(Artifact.platform).distinct()))
    platforms = [ANY_PLATFORM, *sorted(used - {ANY_PLATFORM})]
    platforms += [p for p in PLATFORMS if p not in used]
    customers = [
        (c.slug, c.name) for c in session.scalars(select(Customer).order_by(Customer.name))
    ]
    return UploadChoices(sorted(channels), platforms, customers)


def _version(text: str, label: str) -> tuple[Version | None, str | None]:
    """The version ``text`` names, or why it is refused (in words, with the limit)."""
    if not text:
        return None, f"Give the {label}, like 4.3.1."
    if len(text) > MAX_VERSION_LENGTH:
        return None, f"The {label} is {len(text)} characters long; at most {MAX_VERSION_LENGTH}."
    try:
        version = Version(text)
    except InvalidVersion:
        return None, (
            f"“{text[:80]}” is not a version number: use numbers and dots, like 4.3.1 "
            "(4.3.1rc1 for a release candidate)."
        )
    if str(version) != text:
        return None, f"“{text}” would be saved as {version}; type {version} instead."
    return version, None


def problems(
    session: Session,
    *,
    product: str,
    version: str,
    kind: str,
    severity: str,
    channel: str,
    min_from: str,
    customers: list[str],
    files: Mapping[str, tuple[str, int | None]],
    max_size: int,
    limit_text: str,
) -> dict[str, str]:
    """Every problem by form field (``product``, ``version``, …, ``platform``, ``files``).

    ``files`` maps each chosen file field to its platform and size (None: not known yet);
    ``limit_text`` is ``max_size`` as people read it ("2 GiB").
    """
    found: dict[str, str] = {}
    prod = session.scalar(select(Product).where(Product.slug == product)) if product else None
    if prod is None:
        found["product"] = "Choose a product." if not product else f"There is no product {product}."
    wanted, refused = _version(version.strip(), "version")
    if refused:
        found["version"] = refused
    existing: dict[Version, str] = {}
    if prod is not None:
        for text in session.scalars(select(Release.version).where(Release.product_id == prod.id)):
            existing[Version(text)] = text
    if wanted is not None and wanted in existing and prod is not None:
        found["version"] = (
            f"{prod.slug} {existing[wanted]} exists already; give the next version number."
        )
    if kind not in values(ReleaseKind):
        found["kind"] = f"Choose a kind: {', '.join(values(ReleaseKind))}."
    if severity and severity not in values(Severity):
        found["severity"] = f"Choose a severity: {', '.join(values(Severity))}."
    elif kind == ReleaseKind.SECURITY and not severity:
        found["severity"] = "A security revision needs a severity."
    if not SLUG_RE.match(channel):
        found["channel"] = (
            "A channel is lower-case letters, digits and dashes (like stable or beta), "
            "at most 63 characters."
        )
    if min_from.strip():
        oldest, refused = _version(min_from.strip(), "oldest version it updates from")
        if refused:
            found["min_from"] = refused
        elif oldest is not None and prod is not None and oldest not in existing:
            found["min_from"] = f"{prod.slug} has no release {min_from.strip()}."
        elif oldest is not None and wanted is not None and oldest >= wanted:
            found["min_from"] = "It must be older than the release itself."
    known = set(session.scalars(select(Customer.slug).where(Customer.slug.in_(customers))))
    unknown = [slug for slug in customers if slug not in known]
    if unknown:
        found["customers"] = f"No customer {', '.join(unknown)}."
    _files(found, files, max_size, limit_text)
    return found


def _files(
    found: dict[str, str],
    files: Mapping[str, tuple[str, int | None]],
    max_size: int,
    limit_text: str,
) -> None:
    if not files:
        found["files"] = "Choose a file to upload."
        return
    seen: set[str] = set()
    for platform, size in files.values():
        if not platform:
            found.setdefault("platform", "Give the platform of every file (like linux-x86_64).")
        elif not PLATFORM_RE.match(platform):
            found.setdefault(
                "platform",
                f"“{platform[:40]}” is not a platform: os-arch like linux-x86_64, or any.",
            )
        elif platform in seen:
            found.setdefault("platform", f"{platform} is given twice: one file per platform.")
        seen.add(platform)
        if size is not None and size > max_size:
            found.setdefault(
                "files",
                f"The {platform or 'chosen'} file is larger than {limit_text}; "
                f"at most {limit_text} per file.",
            )
        elif size == 0:
            found.setdefault("files", f"The {platform or 'chosen'} file is empty.")
