"""Facts from rows: the ORM objects a request loaded, as the frozen facts the pure entitlement
engine (:mod:`server.domain.entitlements`) and the offers (:mod:`server.domain.offers`) compute on."""

from __future__ import annotations

from packaging.version import Version

from server.domain.facts import ContractFacts, LicenseFacts, ProductPolicy, ReleaseFacts
from server.domain.models import Contract, License, Product, Release
from server.domain.vocabulary import Severity, is_web_url


def contract_facts(contract: Contract) -> ContractFacts:
    return ContractFacts(
        kind=contract.kind,
        product=contract.product.slug if contract.product else None,
        starts_on=contract.starts_on,
        ends_on=contract.ends_on,
    )


def license_facts(lic: License) -> LicenseFacts:
    return LicenseFacts(
        status=lic.status,
        product=lic.product.slug,
        customer=lic.customer.slug,
        contracts=tuple(contract_facts(c) for c in lic.customer.contracts),
    )


def product_policy(product: Product, renewal_url: str) -> ProductPolicy:
    return ProductPolicy(
        product=product.slug,
        lapse_policy=product.lapse_policy,
        security_carveout_months=product.security_carveout_months,
        expiring_window_days=product.expiring_window_days,
        grace_days=product.grace_days,
        timezone=product.timezone,
        severity_deadlines={
            Severity.CRITICAL: product.deadline_critical_hours,
            Severity.SERIOUS: product.deadline_serious_hours,
            Severity.MINOR: product.deadline_minor_hours,
        },
        # A stored URL that is not http(s) (from before it was checked) is never shown.
        renewal_url=product.renewal_url if is_web_url(product.renewal_url) else renewal_url,
    )


def release_facts(release: Release) -> ReleaseFacts:
    assert release.published_at is not None
    return ReleaseFacts(
        id=release.id,
        product=release.product.slug,
        version=Version(release.version),
        kind=release.kind,
        severity=release.severity,
        channel=release.channel,
        line=release.line.name,
        line_status=release.line.status,
        published_at=release.published_at,
        customers=frozenset(c.slug for c in release.customers),
        yanked=release.is_yanked,
        yank_reason=release.yank_reason,
        recommended_version=release.recommended_version,
        min_from=Version(release.min_from) if release.min_from else None,
        platforms=frozenset(a.platform for a in release.artifacts),
        rollout_percent=release.rollout_percent,
    )
