"""Database models: the vendor's catalogue, its customers, and what installations did.

SQLAlchemy 2 declarative models on a plain ``DeclarativeBase``. Times are stored as UTC and come
back timezone-aware on both SQLite and PostgreSQL (see :class:`server.domain.columns.UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from server.domain.columns import UTCDateTime, one_of
from server.domain.vocabulary import (
    DEFAULT_CHANNEL,
    AccountState,
    ApplyOutcome,
    ContractKind,
    DeliveryState,
    EmailKind,
    EmailState,
    EventType,
    JobKind,
    JobState,
    LapsePolicy,
    LicenseStatus,
    LineStatus,
    PatchFormat,
    PatchSkipReason,
    ReleaseKind,
    ReleaseState,
    Role,
    Severity,
)


def utcnow() -> datetime:
    """The current time, aware, in UTC, to the second (signed documents carry whole seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


release_customers = Table(
    "release_customers",
    Base.metadata,
    Column("release_id", ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
)


class Product(Base):
    """An application the vendor ships, with its lapse policy and severity deadlines."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lapse_policy: Mapped[LapsePolicy] = mapped_column(
        one_of(LapsePolicy, "lapse_policy"), default=LapsePolicy.FALLBACK
    )
    security_carveout_months: Mapped[int] = mapped_column(Integer, default=0)
    expiring_window_days: Mapped[int] = mapped_column(Integer, default=30)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    deadline_critical_hours: Mapped[int] = mapped_column(Integer, default=8)
    deadline_serious_hours: Mapped[int] = mapped_column(Integer, default=24)
    deadline_minor_hours: Mapped[int] = mapped_column(Integer, default=72)
    renewal_url: Mapped[str | None] = mapped_column(String(500), default=None)
    # Days before maintenance ends on which a renewal reminder is e-mailed ("60,30,7"; "" for
    # none); reminders on the day it lapses and after the grace period are sent as well.
    reminder_days: Mapped[str] = mapped_column(String(64), default="60,30,7")
    # Bumped on every change to the product's releases or lines, so that per-process caches of
    # the catalogue can tell with one cheap read whether they are still current.
    catalog_revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[ProductLine]] = relationship(
        back_populates="product", order_by="ProductLine.name"
    )
    releases: Mapped[list[Release]] = relationship(back_populates="product")

    def catalog_changed(self) -> None:
        """Invalidate every process's cached catalogue with an atomic ``+ 1`` in SQL, so that
        concurrent changes (a rollout set while patches are made) never collapse into one bump.

        Call it *before* changing the release: reaching ``release.product`` may autoflush, and
        every transaction must lock the product row before the release row, or two of them
        (a rollout request and the background patch job) deadlock on PostgreSQL.
        """
        self.catalog_revision = Product.catalog_revision + 1


class ProductLine(Base):
    """A major line of a product (``4.x``) and where it is in its lifecycle."""

    __tablename__ = "product_lines"
    __table_args__ = (UniqueConstraint("product_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    status: Mapped[LineStatus] = mapped_column(
        one_of(LineStatus, "status"), default=LineStatus.SUPPORTED
    )

    product: Mapped[Product] = relationship(back_populates="lines")


class Release(Base):
    """One version of a product. Immutable once published, except yank and rollout."""

    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("product_id", "version"),
        CheckConstraint("rollout_percent BETWEEN 0 AND 100", name="rollout_percent"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    line_id: Mapped[int] = mapped_column(ForeignKey("product_lines.id"))
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ReleaseKind] = mapped_column(one_of(ReleaseKind, "kind"))
    severity: Mapped[Severity | None] = mapped_column(one_of(Severity, "severity"), default=None)
    channel: Mapped[str] = mapped_column(String(64), default=DEFAULT_CHANNEL)
    notes: Mapped[str] = mapped_column(Text, default="")
    min_from: Mapped[str | None] = mapped_column(String(64), default=None)
    # None while a draft; set when published (or imported with its historical date).
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    manifest: Mapped[str | None] = mapped_column(Text, default=None)  # signed JSON, once published
    manifest_keyid: Mapped[str | None] = mapped_column(String(64), default=None)
    yanked_at: Mapped[datetime | None] = mapped_column(default=None)
    yank_reason: Mapped[str | None] = mapped_column(Text, default=None)
    recommended_version: Mapped[str | None] = mapped_column(String(64), default=None)
    rollout_percent: Mapped[int] = mapped_column(Integer, default=100)
    # Signed "patches" document (release role), written when patches to this release exist.
    patch_manifest: Mapped[str | None] = mapped_column(Text, default=None)

    product: Mapped[Product] = relationship(back_populates="releases")
    line: Mapped[ProductLine] = relationship()
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="release", cascade="all, delete-orphan", order_by="Artifact.platform"
    )
    customers: Mapped[list[Customer]] = relationship(secondary=release_customers)

    @property
    def is_draft(self) -> bool:
        return self.published_at is None or self.manifest is None

    @property
    def is_yanked(self) -> bool:
        return self.yanked_at is not None

    @property
    def state(self) -> ReleaseState:
        if self.is_draft:
            return ReleaseState.DRAFT
        return ReleaseState.YANKED if self.is_yanked else ReleaseState.PUBLISHED


class Artifact(Base):
    """The file of a release for one platform, content-addressed by SHA-256."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("release_id", "platform"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # The uncompressed content (what patches are computed between), once known.
    content_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    content_size: Mapped[int | None] = mapped_column(BigInteger, default=None)

    release: Mapped[Release] = relationship(back_populates="artifacts")


class Patch(Base):
    """A delta from an older release's artifact content to this artifact's content."""

    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("artifact_id", "from_artifact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    from_artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Rows from before zstd hold "vigor1" (migration 0008); only agents that read it get those.
    format: Mapped[PatchFormat] = mapped_column(
        one_of(PatchFormat, "format"),
        default=PatchFormat.ZSTD1,
        server_default=PatchFormat.VIGOR1.value,
    )

    artifact: Mapped[Artifact] = relationship(foreign_keys=[artifact_id])
    from_artifact: Mapped[Artifact] = relationship(foreign_keys=[from_artifact_id])


class PatchSkip(Base):
    """Why the patch from an older artifact to this one was not made (shown with the release)."""

    __tablename__ = "patch_skips"
    __table_args__ = (UniqueConstraint("artifact_id", "from_artifact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    from_artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    reason: Mapped[PatchSkipReason] = mapped_column(one_of(PatchSkipReason, "reason"))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    artifact: Mapped[Artifact] = relationship(foreign_keys=[artifact_id])
    from_artifact: Mapped[Artifact] = relationship(foreign_keys=[from_artifact_id])


class Customer(Base):
    """A company that buys licenses and contracts."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The addresses the vendor writes to (renewals, security notices), in the order given.
    contact_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    notes: Mapped[str] = mapped_column(Text, default="")  # the vendor's own, never shown to them
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a contact followed the unsubscribe link of a renewal reminder: no more reminders
    # (security notices are sent regardless).
    reminders_unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)

    contracts: Mapped[list[Contract]] = relationship(
        back_populates="customer", order_by="Contract.starts_on", cascade="all, delete-orphan"
    )
    licenses: Mapped[list[License]] = relationship(back_populates="customer")
    portal_users: Mapped[list[CustomerUser]] = relationship(
        back_populates="customer", order_by="CustomerUser.email", cascade="all, delete-orphan"
    )


class Contract(Base):
    """Maintenance or customization cover for one product (or all), for whole days."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ContractKind] = mapped_column(one_of(ContractKind, "kind"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)  # inclusive
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="contracts")
    product: Mapped[Product | None] = relationship()


class License(Base):
    """A secret key an installation presents. Only its SHA-256 is stored."""

    __tablename__ = "licenses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    label: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[LicenseStatus] = mapped_column(
        one_of(LicenseStatus, "status"), default=LicenseStatus.ACTIVE
    )
    max_installations: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime | None] = mapped_column(default=None)

    customer: Mapped[Customer] = relationship(back_populates="licenses")
    product: Mapped[Product] = relationship()


class Installation(Base):
    """One running copy of a product, known by the random id its agent made."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("license_id", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # Offline status files: the installation's own key, pinned at the first import.
    status_key: Mapped[str | None] = mapped_column(String(64), default=None)
    status_exported_at: Mapped[datetime | None] = mapped_column(default=None)


class DownloadEvent(Base):
    """A download that was served (or redirected to storage)."""

    __tablename__ = "download_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    range_start: Mapped[int] = mapped_column(BigInteger, default=0)


class ApplyReport(Base):
    """What an installation said happened when it applied a release."""

    __tablename__ = "apply_reports"
    __table_args__ = (Index("ix_apply_reports_release_outcome", "release_id", "outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    license_id: Mapped[int] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    installation_uid: Mapped[str] = mapped_column(String(64))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    from_version: Mapped[str | None] = mapped_column(String(64), default=None)
    # Reads give ApplyOutcome members; typed str while server/web/admin.py counts reports in a
    # dict it reads with plain strings (``reports.get("failure", 0)``).
    outcome: Mapped[ApplyOutcome] = mapped_column(one_of(ApplyOutcome, "outcome"))
    code: Mapped[str | None] = mapped_column(String(64), default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)


class AdminUser(Base):
    """A person who runs the vendor side.

    Bumping ``session_version`` ends every session of theirs, copied cookies included, and voids
    every set-password link issued before (sign out, a new password, disable, reset).
    ``password_hash`` is empty (``""``) after a reset, until they choose one with the link.
    """

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(one_of(Role, "role"), default=Role.VIEWER)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def state(self) -> AccountState:
        if self.disabled:
            return AccountState.DISABLED
        return AccountState.ACTIVE if self.password_hash else AccountState.INVITED


class CustomerUser(Base):
    """A person at a customer who signs in to the portal with email and password.

    ``password_hash`` is empty until the person sets one with their invitation link. Bumping
    ``session_version`` ends every portal session and voids every set-password link issued
    before (disable, reset, sign out, a new password).
    """

    __tablename__ = "customer_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lowercased
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)

    customer: Mapped[Customer] = relationship(back_populates="portal_users")

    @property
    def state(self) -> AccountState:
        if self.disabled:
            return AccountState.DISABLED
        return AccountState.ACTIVE if self.password_hash else AccountState.INVITED


class PortalKeySession(Base):
    """A portal session opened with a license key; the session cookie holds its random token.

    Signing out deletes the row, so a copied cookie dies with it. (Portal users and admin users
    have a ``session_version`` instead; a license key is shared by a customer's people and
    installations, and one person signing out must not sign out the others.)
    """

    __tablename__ = "portal_key_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token
    license_id: Mapped[int] = mapped_column(
        ForeignKey("licenses.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    license: Mapped[License] = relationship()


class ApiToken(Base):
    """A bearer token for the admin API (CI publishing, billing, CRM). Only its SHA-256 is
    stored. ``scopes`` bound what it may do; a token made before scopes has none stored and
    may do what its ``role`` meant (``vocabulary.ROLE_SCOPES``)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[Role] = mapped_column(one_of(Role, "role"), default=Role.PUBLISHER)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    scopes: Mapped[list[str] | None] = mapped_column(JSON(), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class IdempotencyKey(Base):
    """A POST to the admin API sent with an ``Idempotency-Key``: the request's fingerprint and
    the answer given, replayed when the same token sends the same key again (docs/admin-api.md).
    ``status`` is None while the first request runs."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class StagedUpload(Base):
    """An artifact uploaded on its own (``POST /api/v1/admin/uploads``), waiting to be named in a
    release's JSON publish. Its bytes are in the store under ``sha256`` already; ``used_at`` is set
    by the publish that takes it (once), and ``vigor gc`` deletes rows older than a day, and then
    the blobs nothing references."""

    __tablename__ = "staged_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEvent(Base):
    """Who did what, when: every admin action and every automatic safety action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TrustRoot(Base):
    """One version of the signed root metadata (the chain agents walk)."""

    __tablename__ = "trust_roots"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThrottleWindow(Base):
    """One fixed rate-limit window: ``hits`` counted under ``key`` until ``closes_at``.

    The database's rate-limit storage (server/db/throttle.py), shared by every process serving
    the database. A key names the limit and who is counted: a client address, or a digest of
    the account or license key submitted (never a secret itself). Closed windows are reopened
    by the next hit or swept.
    """

    __tablename__ = "throttle_windows"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    closes_at: Mapped[float] = mapped_column(Float, index=True)  # seconds since the epoch
    hits: Mapped[int] = mapped_column(Integer)


class Job(Base):
    """A background job, the truth of the queue (an outbox): written in the transaction of what
    asked for it, claimed by one worker at a time under a lease, retried with backoff.

    The task queue (huey) only carries the job's id to a worker promptly; a lost message, a
    killed worker or a queue emptied by a restart loses nothing, because due rows are dispatched
    again (server/jobs). ``key`` makes a job idempotent: one row per piece of work.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(one_of(JobKind, "kind", length=32))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[JobState] = mapped_column(
        one_of(JobState, "state"), default=JobState.QUEUED, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Email(Base):
    """One e-mail, written where it is asked for and sent by the worker (an outbox row).

    ``dedupe_key`` names what the e-mail is about (a reminder stage of one contract period, a
    security revision for one address): the database refuses a second row with the same key,
    so a scan that runs twice sends nothing twice.
    """

    __tablename__ = "emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, default=None
    )
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[EmailKind] = mapped_column(one_of(EmailKind, "kind"))
    language: Mapped[str] = mapped_column(String(8), default="en")
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    # The unsubscribe link a reminder carries (List-Unsubscribe), else None.
    unsubscribe_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    state: Mapped[EmailState] = mapped_column(
        one_of(EmailState, "state"), default=EmailState.QUEUED, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    smtp_response: Mapped[str | None] = mapped_column(Text, default=None)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    customer: Mapped[Customer | None] = relationship()


class WorkerBeat(Base):
    """The last sign of life of one ``vigor worker`` process (what /healthz reads)."""

    __tablename__ = "worker_beats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookEndpoint(Base):
    """A URL an admin asked Vigor to tell about events (docs/webhooks.md).

    The secret (``whsec_…``, Standard Webhooks) signs every delivery; it is kept because signing
    needs it (HMAC), encrypted with a key derived from the instance's secret key
    (``secret_encrypted``, see ``server/domain/sealed.py``), and shown to the admin once, when
    made or rotated. ``failing_since`` and
    ``consecutive_failures`` track a run of failures; a long run disables the endpoint.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEvent(Base):
    """Something that happened, written in the transaction of the change that caused it.

    ``event_id`` (``msg_…``) is the ``webhook-id`` of every delivery and retry of it, so a
    receiver can drop duplicates. ``dedupe_key`` makes a time-based event fire once (the
    contract scan); it is null for the others.
    """

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[EventType] = mapped_column(one_of(EventType, "type", length=32), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookDelivery(Base):
    """One event sent to one endpoint; its attempts are the delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[DeliveryState] = mapped_column(
        one_of(DeliveryState, "state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    event: Mapped[WebhookEvent] = relationship(lazy="joined")
    endpoint: Mapped[WebhookEndpoint] = relationship()
    log: Mapped[list[WebhookAttempt]] = relationship(
        order_by="WebhookAttempt.id", cascade="all, delete-orphan", passive_deletes=True
    )


class WebhookAttempt(Base):
    """One try at a delivery: when, how long, what the endpoint answered (or the error)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
