"""Apply reports from installations, and the safety valve they drive: halting a bad rollout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.domain import audit, events
from server.domain.checks import json_object
from server.domain.errors import InvalidInputError
from server.domain.licensing import (
    LicenseLookup,
    LicenseView,
    authenticate_license,
    check_product,
)
from server.domain.models import ApplyReport
from server.domain.releases import find_release, parse_version
from server.domain.vocabulary import INSTALLATION_ID_RE, SLUG_RE, ApplyOutcome, EventType, parse

CODE_MAX = 64
MESSAGE_MAX = 2000


class RolloutPolicy(Protocol):
    @property
    def rollout_failure_threshold(self) -> float: ...

    @property
    def rollout_failure_min_reports(self) -> int: ...


@dataclass(frozen=True)
class ReportBody:
    installation_id: str
    product: str
    version: str
    from_version: str | None
    outcome: ApplyOutcome
    code: str | None
    message: str | None


def _optional(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInputError(name, f"must be a string of at most {limit} characters")
    return value


def parse_report(body: Any) -> ReportBody:
    body = json_object(body)
    installation_id = body.get("installation_id")
    if not isinstance(installation_id, str) or not INSTALLATION_ID_RE.match(installation_id):
        raise InvalidInputError("installation_id", "is required: 16 to 64 characters [A-Za-z0-9_-]")
    product = body.get("product")
    if not isinstance(product, str) or not SLUG_RE.match(product):
        raise InvalidInputError("product", "is required")
    version = body.get("version")
    if not isinstance(version, str) or len(version) > 64:
        raise InvalidInputError("version", "is required")
    parse_version(version)
    outcome = parse(ApplyOutcome, "outcome", body.get("outcome"))
    from_version = _optional(body, "from_version", 64)
    if from_version is not None:
        parse_version(from_version, "from_version")
    return ReportBody(
        installation_id=installation_id,
        product=product,
        version=version,
        from_version=from_version,
        outcome=outcome,
        code=_optional(body, "code", CODE_MAX),
        message=_optional(body, "message", MESSAGE_MAX),
    )


def record_report(
    session: Session, lic: LicenseView, body: ReportBody, policy: RolloutPolicy, *, now: datetime
) -> None:
    """Store the report, then halt the release's rollout if failures passed the threshold."""
    release = find_release(session, body.product, body.version)
    session.add(
        ApplyReport(
            at=now,
            license_id=lic.id,
            installation_uid=body.installation_id,
            release_id=release.id,
            from_version=body.from_version,
            outcome=body.outcome,
            code=body.code,
            message=body.message,
        )
    )
    session.flush()
    if body.outcome != ApplyOutcome.SUCCESS:
        # Not an admin action, so not audited: the event is written here, in the report's
        # transaction, as audit.record writes the others.
        events.emit(
            session,
            EventType.INSTALLATION_UPDATE_FAILED,
            {
                "customer": lic.customer_slug,
                "product": body.product,
                "installation_id": body.installation_id,
                "version": body.version,
                "from_version": body.from_version,
                "outcome": str(body.outcome),
                "code": body.code,
                "message": body.message,
                "reported_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
    if body.outcome != ApplyOutcome.SUCCESS and release.rollout_percent > 0:
        counts = dict(
            session.execute(
                select(ApplyReport.outcome, func.count(func.distinct(ApplyReport.installation_uid)))
                .where(ApplyReport.release_id == release.id)
                .group_by(ApplyReport.outcome)
            ).all()
        )
        failed = counts.get(ApplyOutcome.FAILURE, 0) + counts.get(ApplyOutcome.ROLLED_BACK, 0)
        total = failed + counts.get(ApplyOutcome.SUCCESS, 0)
        if (
            total >= policy.rollout_failure_min_reports
            and failed / total >= policy.rollout_failure_threshold
        ):
            previous = release.rollout_percent
            release.product.catalog_changed()  # the product row first: see Product.catalog_changed
            release.rollout_percent = 0
            audit.record(
                session,
                "system",
                "rollout.halt",
                f"{release.product.slug} {release.version}",
                reason="install failures passed the threshold",
                failed=failed,
                reported=total,
                threshold=policy.rollout_failure_threshold,
                previous_percent=previous,
            )
    session.commit()


def receive_report(
    lookup: LicenseLookup,
    key: str | None,
    body: Any,
    session: Session,
    policy: RolloutPolicy,
    *,
    now: datetime,
) -> None:
    """An apply report from an installation of the license ``key`` names, checked and stored.

    Args:
        body: the request's JSON, or None when it was not JSON.

    Raises:
        LicenseMissingError, LicenseUnknownError, LicenseRevokedError, LicenseSuspendedError,
            WrongProductError: the license may not report for this product.
        InvalidInputError: a bad body.
        NotFoundError: no such release.
    """
    lic = authenticate_license(lookup, key)
    report = parse_report(body)
    check_product(lic, report.product)
    record_report(session, lic, report, policy, now=now)
