"""The update check: from a license and what an installation runs to a signed answer.

1. Parse the request; refuse it naming the field (nothing else happens).
2. Authenticate the license (constant-time), check its product, register the installation
   (refused past the license's cap; written at most once an hour per installation).
3. Load the product's catalogue as facts (:mod:`server.domain.catalog`; a per-process cache
   keyed by the product's ``catalog_revision`` means one cheap read per check).
4. Ask the pure entitlement engine for the maintenance status, the offer, the renewal prompt and
   the notices; attach the offered release's signed manifest and a short-lived download URL.
5. The caller signs the result with the ``check`` role's key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version
from sqlalchemy.orm import Session

from server.domain import offers
from server.domain.catalog import Catalog, CatalogCache, artifact_for
from server.domain.coverage import MaintenanceStatus
from server.domain.download_links import DownloadGrant, make_token
from server.domain.errors import InvalidInputError
from server.domain.facts import LicenseFacts, ProductPolicy
from server.domain.licensing import (
    LicenseLookup,
    authenticate_license,
    check_product,
    register_installation,
)
from server.domain.messages import DEFAULT_LANGUAGE, negotiate
from server.domain.renewal_links import renewal_link
from server.domain.trust import Signer, iso, signed_document_bytes
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    INSTALLATION_ID_RE,
    NONCE_RE,
    PLATFORM_RE,
    SLUG_RE,
    PatchFormat,
)


@dataclass(frozen=True)
class CheckRequest:
    product: str
    version: Version
    version_text: str
    platform: str
    channel: str
    installation_id: str
    nonce: str
    # The patch formats the agent reads; agents from before zstd send none and read "vigor1".
    patch_formats: frozenset[str] = frozenset({PatchFormat.VIGOR1})


def _patch_formats(body: Mapping[str, Any]) -> frozenset[str]:
    value = body.get("patch_formats")
    if value is None:
        return frozenset({PatchFormat.VIGOR1})
    if (
        not isinstance(value, list)
        or len(value) > 16
        or not all(isinstance(v, str) and len(v) <= 32 for v in value)
    ):
        raise InvalidInputError("patch_formats", "must be a list of format names")
    return frozenset(value)  # names this server does not know are simply never matched


def _field(
    body: Mapping[str, Any],
    name: str,
    pattern: re.Pattern[str] | None,
    required: bool = True,
    default: str | None = None,
    max_length: int = 128,
) -> str:
    value = body.get(name, default)
    if value is None:
        if required:
            raise InvalidInputError(name, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInputError(name, "must be a string")
    if len(value) > max_length or (pattern is not None and not pattern.match(value)):
        raise InvalidInputError(name, f"{value[:80]!r} is not valid")
    return value


def json_object(body: Any) -> Mapping[str, Any]:
    """A request's JSON body, which must be an object (None: it was not JSON at all)."""
    if body is None:
        raise InvalidInputError("body", "send a JSON object with Content-Type: application/json")
    if not isinstance(body, Mapping):
        raise InvalidInputError("body", "must be a JSON object")
    return body


def parse_check_request(body: Any) -> CheckRequest:
    """Validate a check body; the error names the first bad field."""
    body = json_object(body)
    version_text = _field(body, "version", None, max_length=64)
    try:
        version = Version(version_text)
    except InvalidVersion:
        raise InvalidInputError(
            "version", f"{version_text[:80]!r} is not a valid version"
        ) from None
    return CheckRequest(
        product=_field(body, "product", SLUG_RE),
        version=version,
        version_text=version_text,
        platform=_field(body, "platform", PLATFORM_RE),
        channel=_field(body, "channel", SLUG_RE, required=False, default=DEFAULT_CHANNEL),
        installation_id=_field(body, "installation_id", INSTALLATION_ID_RE),
        nonce=_field(body, "nonce", NONCE_RE),
        patch_formats=_patch_formats(body),
    )


# --------------------------------------------------------------------------- the service


class CheckPolicy(Protocol):
    """What the vendor configured for check answers (``server.config.Settings`` is one)."""

    @property
    def secret_key(self) -> str: ...  # signs download links

    @property
    def renewal_url(self) -> str: ...  # when a product names none

    @property
    def check_response_ttl(self) -> int: ...  # seconds an answer stays fresh

    @property
    def download_url_ttl(self) -> int: ...  # seconds a download link stays valid

    @property
    def installation_touch_interval(self) -> int: ...  # seconds between writes per installation


@dataclass(frozen=True)
class CheckService:
    """Answers update checks; one per process (see ``server.services.Services``)."""

    catalogs: CatalogCache
    signer: Callable[[], Signer]  # the check role's key (the newest root may name another)
    policy: CheckPolicy

    def respond(
        self,
        lookup: LicenseLookup,
        key: str | None,
        body: Any,
        *,
        sessions: Callable[[], Session],
        links_base: str,
        accept_language: object | None,
        now: datetime,
    ) -> bytes:
        """The signed answer to a check, as the bytes to send (docs/protocol.md).

        A known installation polling within the touch interval costs one read and no
        transaction: ``lookup`` reads the license, its contracts and the installation in one
        query; ``sessions`` is called only to record a new or changed installation, or to load
        a catalogue that is not cached yet (and committed here when something was recorded).

        Args:
            key: the license key presented (``Authorization: License <key>``), if any.
            body: the request's JSON, or None when it was not JSON.
            links_base: download links are this followed by their token.
            accept_language: the request's ``Accept-Language`` (a Werkzeug ``LanguageAccept``).

        Raises:
            InvalidInputError: a bad body (after a bad key, which is refused first).
            LicenseMissingError, LicenseUnknownError, LicenseRevokedError,
                LicenseSuspendedError, WrongProductError, InstallationLimitError: refused.
            SigningError: no check key to sign with.
        """
        try:
            req = parse_check_request(body)
        except InvalidInputError:
            authenticate_license(lookup, key)  # a bad key is refused before a bad body
            raise
        lic = authenticate_license(lookup, key, installation_uid=req.installation_id)
        check_product(lic, req.product)
        policy = self.policy
        recorded = register_installation(
            sessions,
            lic,
            req.installation_id,
            version=req.version_text,
            platform=req.platform,
            channel=req.channel,
            now=now,
            touch_interval=timedelta(seconds=policy.installation_touch_interval),
        )
        catalog = self.catalogs.get(
            sessions, lic.product_id, lic.catalog_revision, policy.renewal_url
        )
        link_expires = now + timedelta(seconds=policy.download_url_ttl)

        def download_url(artifact_id: int, patch_id: int | None) -> tuple[str, datetime]:
            token = make_token(policy.secret_key, DownloadGrant(lic.id, artifact_id, patch_id))
            return links_base + token, link_expires

        signed = answer(
            lic.facts(),
            catalog,
            req,
            now,
            ttl=timedelta(seconds=policy.check_response_ttl),
            download_url=download_url,
            language=negotiate(lic.language, accept_language),
            license_fingerprint=lic.key_hash,
            license_id=lic.id,
        )
        document = signed_document_bytes(signed, [self.signer()])
        if recorded:
            sessions().commit()
        return document


# --------------------------------------------------------------------------- the answer


def answer(
    lic: LicenseFacts,
    catalog: Catalog,
    req: CheckRequest,
    now: datetime,
    *,
    ttl: timedelta,
    download_url: Callable[[int, int | None], tuple[str, datetime]],
    license_fingerprint: str,
    license_id: int,
    language: str = DEFAULT_LANGUAGE,
) -> dict[str, Any]:
    """The ``signed`` part of a check response (docs/protocol.md); its sentences in
    ``language``, its renewal links filled in for license ``license_id``
    (:mod:`server.domain.renewal_links`).

    ``license_fingerprint`` is the SHA-256 (lowercase hex) of the license key that asked
    (the license's stored ``key_hash``): the agent compares it with its own key's, so that an
    answer obtained with another license is refused.
    """
    result = offers.select_offer(
        lic,
        catalog.policy,
        catalog.index,
        installed_version=req.version,
        platform=req.platform,
        channel=req.channel,
        installation_id=req.installation_id,
        now=now,
    )
    status = result.status  # computed once, shared with the renewal summary
    renewal_url = renewal_link(
        catalog.policy.renewal_url,
        customer=lic.customer,
        license_id=license_id,
        product=lic.product,
        ends_on=status.maintenance_ends_on,
    )
    update = None
    if result.offer is not None:
        release = result.offer.release
        artifact = artifact_for(catalog, release.id, req.platform)
        if artifact is not None:
            url, expires = download_url(artifact.artifact_id, None)
            update = {
                "version": str(release.version),
                "kind": release.kind,
                "severity": release.severity,
                "manifest": catalog.manifests[release.id],
                "download": {
                    "url": url,
                    "expires_at": iso(expires),
                    "size": artifact.size,
                    "sha256": artifact.sha256,
                },
                "apply_by": iso(result.offer.apply_by) if result.offer.apply_by else None,
            }
            patch = catalog.patches.get((release.id, artifact.platform, str(req.version)))
            if (
                patch is not None
                and patch.format in req.patch_formats
                and release.id in catalog.patch_documents
            ):
                patch_url, patch_expires = download_url(artifact.artifact_id, patch.patch_id)
                update["patch"] = {
                    "from_version": str(req.version),
                    "document": catalog.patch_documents[release.id],
                    "download": {
                        "url": patch_url,
                        "expires_at": iso(patch_expires),
                        "size": patch.size,
                        "sha256": patch.sha256,
                    },
                }
    summary = offers.renewal_summary(
        lic,
        catalog.policy,
        catalog.index,
        installed_version=req.version,
        platform=req.platform,
        channel=req.channel,
        now=now,
        status=status,
    )
    return {
        "type": "check",
        "nonce": req.nonce,
        "installation_id": req.installation_id,
        "product": req.product,
        "platform": req.platform,
        "channel": req.channel,
        "installed_version": req.version_text,
        "license_fingerprint": license_fingerprint,
        "issued_at": iso(now),
        "expires_at": iso(now + ttl),
        "language": language,
        "entitlement": entitlement_json(status, catalog.policy, language, renewal_url=renewal_url),
        "update": update,
        "renewal": _renewal_json(summary, renewal_url, language),
        "notices": [{**n, "message": n["message"].in_language(language)} for n in result.notices],
    }


def entitlement_json(
    status: MaintenanceStatus,
    policy: ProductPolicy,
    language: str = DEFAULT_LANGUAGE,
    *,
    renewal_url: str,
) -> dict[str, Any]:
    """The ``entitlement`` object of check responses and bundle statements (``cutoff`` null
    when nothing is entitled by it: none ever covered, or lapsed under the revoke policy);
    ``renewal_url`` is the product's link filled in for the license."""
    cutoff = status.signed_cutoff(policy.lapse_policy)
    return {
        "status": status.status,
        "maintenance_ends_on": status.maintenance_ends_on.isoformat()
        if status.maintenance_ends_on
        else None,
        "cutoff": iso(cutoff) if cutoff else None,
        "renewal_url": renewal_url,
        "message": status.message.in_language(language),
    }


def _renewal_json(
    summary: offers.RenewalSummary | None, renewal_url: str, language: str
) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "newest_version": str(summary.newest_version) if summary.newest_version else None,
        "updates": summary.updates,
        "security": summary.security,
        "versions": summary.versions,
        "renewal_url": renewal_url,
        "message": summary.message.in_language(language),
    }
