"""What a verified check answer means to a person: maintenance status, renewal prompt, notices.

Pure functions of a ``CheckAnswer``: the CLI prints their lines or their JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from client_agent.verify import CheckAnswer

__all__ = [
    "PROMPTED",
    "entitlement_lines",
    "notice_lines",
    "offer_line",
    "renewal_lines",
    "summary",
]

# Statuses in which the customer is missing (or about to miss) releases: they get the prompt.
PROMPTED = frozenset({"expiring", "grace", "lapsed", "none"})


def summary(
    answer: CheckAnswer, installed: str | None, due: bool, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The answer as plain JSON-able data (``--json``)."""
    manifest = answer.manifest
    offer = None
    if manifest is not None:
        offer = {
            "version": str(manifest.version),
            "kind": manifest.kind,
            "severity": manifest.severity,
            "published_at": _iso(manifest.published_at),
            "size": manifest.artifact.size,
            "sha256": manifest.artifact.sha256,
            "platform": manifest.artifact.platform,
            "apply_by": _iso(answer.apply_by),
            "due": due,
        }
    return {
        "installed_version": installed,
        "entitlement": dict(answer.entitlement),
        "renewal": dict(answer.renewal) if answer.renewal else None,
        "notices": [dict(n) for n in answer.notices],
        "update": offer,
        **(extra or {}),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def offer_line(data: Mapping[str, Any]) -> str:
    """``update available: 5.0.1 (security, critical; due now)`` or ``up to date``."""
    offer = data.get("update")
    if not offer:
        return "up to date"
    kind = offer["kind"] + (f", {offer['severity']}" if offer.get("severity") else "")
    when = "due now" if offer["due"] else f"apply by {offer['apply_by']}"
    return f"update available: {offer['version']} ({kind}; {when})"


def entitlement_lines(answer: CheckAnswer) -> list[str]:
    """Maintenance status, then the renewal prompt when it applies, then every notice."""
    entitlement = answer.entitlement
    status = str(entitlement.get("status", "unknown"))
    message = str(entitlement.get("message") or "")
    lines = [f"maintenance: {status}" + (f" — {message}" if message else "")]
    ends = entitlement.get("maintenance_ends_on")
    if ends and status in {"active", "expiring"}:
        lines.append(f"  maintenance ends on {ends}")
    lines.extend(renewal_lines(answer, status))
    lines.extend(notice_lines(answer))
    return lines


def renewal_lines(answer: CheckAnswer, status: str) -> list[str]:
    """The renewal prompt: what renewing brings (newest version, counts) and where to renew."""
    renewal = answer.renewal
    if status not in PROMPTED:
        return []
    url = (renewal or {}).get("renewal_url") or answer.entitlement.get("renewal_url")
    if not renewal:
        return [f"  ! renew at {url}"] if url and status != "expiring" else []
    lines = [f"  ! {renewal.get('message') or 'Renew maintenance to receive newer releases.'}"]
    counts = [renewal.get(k) or 0 for k in ("updates", "security", "versions")]
    if any(counts) or renewal.get("newest_version"):
        lines.append(
            f"    missing: {counts[0]} update(s), {counts[1]} security revision(s), "
            f"{counts[2]} new version(s); newest {renewal.get('newest_version') or '?'}"
        )
    if url:
        lines.append(f"    renew at {url}")
    return lines


def notice_lines(answer: CheckAnswer) -> list[str]:
    """End-of-life and yanked notices, with the reason and the recommended version."""
    lines = []
    for notice in answer.notices:
        details = [
            f"{label}: {notice[key]}"
            for key, label in (("reason", "reason"), ("recommended_version", "recommended"))
            if notice.get(key)
        ]
        suffix = f" ({'; '.join(details)})" if details else ""
        lines.append(f"  notice ({notice.get('code', 'notice')}): {notice.get('message')}{suffix}")
    return lines
