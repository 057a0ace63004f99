"""A release history from another system: a folder of files and a CSV file naming them
(docs/import.md), published release by release through the ordinary publish path
(:func:`server.domain.publishing.publish`) with each release's historical date.

Everything that can be checked before publishing is checked for every row first — versions,
kinds, severities, dates, ``min_from``, and that each file exists and is not empty — so a bad row
or a missing file stops the import before anything is published. Versions the product already
has are skipped (with a message), so the import can be run again after a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain.csv_input import CsvRow, Problem, parse_moment, read_table
from server.domain.errors import InvalidInputError
from server.domain.models import Release
from server.domain.products import get_product
from server.domain.publishing import PathArtifact, ReleaseSpec
from server.domain.releases import parse_version
from server.domain.vocabulary import (
    ANY_PLATFORM,
    DEFAULT_CHANNEL,
    PLATFORMS,
    SLUG_RE,
    ReleaseKind,
    Severity,
    parse,
)

FILE_COLUMN = "file."  # file.linux-x86_64, file.any: the file of that platform, in the folder
COLUMNS = (
    "version",
    "kind",
    "severity",
    "date",
    "notes",
    "channel",
    "line",
    "min_from",
    *(FILE_COLUMN + p for p in (ANY_PLATFORM, *PLATFORMS)),
)
NOTES_FILES = (".md", ".markdown", ".txt")


@dataclass
class ReleasePlan:
    """What an import will publish, in order (oldest first), and what it skips or refuses."""

    releases: list[tuple[ReleaseSpec, list[PathArtifact]]] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


def _in_folder(folder: Path, name: str, column: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InvalidInputError(column, f"{name[:80]!r} is outside the folder")
    if not path.is_file():
        raise InvalidInputError(column, f"no file {name[:80]!r} in {folder}")
    if path.stat().st_size == 0:
        raise InvalidInputError(column, f"{name[:80]!r} is empty")
    return path


def _notes(folder: Path, text: str) -> str:
    """The notes: the named Markdown or text file of the folder, else the cell itself."""
    if text.lower().endswith(NOTES_FILES) and "\n" not in text:
        return _in_folder(folder, text, "notes").read_text(encoding="utf-8")
    return text


def _spec(
    product: str, row: CsvRow, folder: Path, now: datetime
) -> tuple[ReleaseSpec, list[PathArtifact]]:
    """One row as a publish request.

    Raises:
        InvalidInputError: the first bad field of the row.
    """
    version = parse_version(row.get("version"))
    kind = parse(ReleaseKind, "kind", row.get("kind").lower())
    severity = (
        parse(Severity, "severity", row.get("severity").lower()) if row.get("severity") else None
    )
    if kind == ReleaseKind.SECURITY and severity is None:
        raise InvalidInputError("severity", "a security revision needs a severity")
    if not row.get("date"):
        raise InvalidInputError("date", "is required")
    published_at = parse_moment(row.get("date"), "date")
    if published_at > now:
        raise InvalidInputError("date", "is in the future")
    channel = row.get("channel") or DEFAULT_CHANNEL
    if not SLUG_RE.match(channel):
        raise InvalidInputError("channel", f"{channel[:40]!r} is not a channel name")
    min_from = row.get("min_from") or None
    if min_from is not None:
        parse_version(min_from, "min_from")
    files = [
        PathArtifact(column.removeprefix(FILE_COLUMN), _in_folder(folder, name, column))
        for column, name in ((c, row.get(c)) for c in COLUMNS if c.startswith(FILE_COLUMN))
        if name
    ]
    if not files:
        raise InvalidInputError("files", "no file.PLATFORM column names a file")
    spec = ReleaseSpec(
        product=product,
        version=str(version),
        kind=kind,
        severity=severity,
        channel=channel,
        notes=_notes(folder, row.get("notes")),
        min_from=min_from,
        line=row.get("line") or None,
        published_at=published_at,
        platforms=tuple(f.platform for f in files),
    )
    return spec, files


def plan_releases(
    session: Session, product: str, data: bytes, folder: Path, *, now: datetime
) -> ReleasePlan:
    """Check every row of the CSV file and every file it names; nothing is published here.

    Raises:
        NotFoundError: no such product.
        InvalidInputError: the CSV file as a whole is unreadable.
    """
    prod = get_product(session, product)
    existing = {
        parse_version(v)
        for v in session.scalars(select(Release.version).where(Release.product_id == prod.id))
    }
    plan = ReleasePlan()
    first_line: dict[Version, int] = {}
    wanted: list[tuple[int, ReleaseSpec, list[PathArtifact]]] = []
    for row in read_table(data, COLUMNS).rows:
        try:
            spec, files = _spec(prod.slug, row, folder, now)
        except InvalidInputError as exc:
            plan.errors.append(Problem(row.line, exc.message))
            continue
        version = Version(spec.version)
        if version in first_line:
            plan.errors.append(
                Problem(row.line, f"version {version} is on line {first_line[version]} too")
            )
            continue
        first_line[version] = row.line
        if version in existing:
            plan.skipped.append(Problem(row.line, f"{prod.slug} {version} exists already"))
            continue
        wanted.append((row.line, spec, files))
    wanted.sort(key=lambda item: (item[1].published_at, Version(item[1].version)))
    published = set(existing)
    for line, spec, files in wanted:
        if spec.min_from is not None and Version(spec.min_from) not in published:
            plan.errors.append(
                Problem(line, f"min_from: {spec.min_from} is neither published nor an earlier row")
            )
        published.add(Version(spec.version))
        plan.releases.append((spec, files))
    plan.errors.sort(key=lambda p: p.line)
    return plan
