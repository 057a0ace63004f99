"""The long-lived parts an app process holds: database, artifact store, online keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from server.config import Settings
from server.db import Database
from server.domain import contract_events, emails, roots
from server.domain.catalog import CatalogCache
from server.domain.checks import CheckService
from server.domain.emails import Mailer, MailSettings
from server.domain.errors import SigningError
from server.domain.jobs import RetryPolicy
from server.domain.models import utcnow
from server.domain.trust import KeySigner, Root, TrustError
from server.domain.vocabulary import JobKind
from server.domain.webhooks import DisablePolicy
from server.jobs.probe import run_probe
from server.jobs.queue import JobQueue, dispatch_after_commit
from server.jobs.runner import JobRunner
from server.jobs.webhooks import WebhookSender
from server.keyring import KeyFileError, Keyring
from server.mailer import SmtpMailer
from server.metrics import MeteredStore
from server.storage import make_store
from server.storage.base import ArtifactStore


def store_from_settings(settings: Settings) -> ArtifactStore:
    if settings.storage_backend == "s3":
        return make_store(
            "s3",
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
        )
    return make_store("local", root=settings.storage_root)


@dataclass
class Services:
    """Built once per process by the app factory and the CLI."""

    settings: Settings
    db: Database
    store: ArtifactStore
    keyring: Keyring
    # The newest root is re-read at most this often: a rotation reaches every process quickly
    # without a database read on every request.
    root_ttl_seconds: float = 10.0
    # Per-app (not per-module): two apps in one process must never share a catalogue.
    catalogs: CatalogCache = field(default_factory=CatalogCache, repr=False)
    checks: CheckService = field(init=False, repr=False)
    _root: tuple[float, Root] | None = field(default=None, repr=False)
    jobs: JobQueue = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closing: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.checks = CheckService(self.catalogs, lambda: self.signer("check"), self.settings)
        settings = self.settings
        sender = WebhookSender(
            self.db,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            disable=DisablePolicy(
                settings.webhook_disable_after_failures,
                timedelta(hours=settings.webhook_disable_after_hours),
            ),
            secret_key=settings.secret_key,
        )
        runner = JobRunner(
            self.db,
            {
                JobKind.PATCHES: self._patches_job,
                JobKind.PROBE: run_probe,
                JobKind.EMAIL: self._email_job,
                JobKind.REMINDERS_SCAN: self._reminders_job,
                JobKind.SECURITY_NOTICES: self._security_notices_job,
                JobKind.WEBHOOK_DELIVERY: sender,
                JobKind.CONTRACT_EVENTS_SCAN: self._contract_events_job,
            },
            RetryPolicy(settings.job_max_attempts, settings.job_retry_seconds),
            settings.job_lease_seconds,
            # A webhook delivery has its own, longer schedule: 5 s, 10 s, … (docs/webhooks.md).
            policies={
                JobKind.WEBHOOK_DELIVERY: RetryPolicy(
                    settings.webhook_max_attempts, settings.webhook_retry_seconds
                )
            },
        )
        self.jobs = JobQueue(self.settings, runner)
        dispatch_after_commit(self.db.sessions, self.jobs)

    @classmethod
    def from_settings(cls, settings: Settings, store: ArtifactStore | None = None) -> Services:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            # Failures and uploaded bytes are counted around any store (/metrics).
            store=cast(
                ArtifactStore,
                MeteredStore(store if store is not None else store_from_settings(settings)),
            ),
            keyring=Keyring(settings.keys_dir, settings.key_passphrase),
        )

    def root(self) -> Root:
        """The newest root of trust (cached for a few seconds)."""
        now = time.monotonic()
        with self._lock:
            if self._root is not None and now - self._root[0] < self.root_ttl_seconds:
                return self._root[1]
        with self.db.sessions() as session:
            root = roots.current_root(session)
        with self._lock:
            self._root = (now, root)
        return root

    def has_root(self) -> bool:
        """Whether a root of trust exists yet (``vigor init`` made one)."""
        with self.db.sessions() as session:
            return roots.newest_version(session) > 0

    def forget_root(self) -> None:
        with self._lock:
            self._root = None

    def on_close(self, callback: Callable[[], None]) -> None:
        """Have :meth:`close` call ``callback`` first: to stop work on threads of its own that
        uses the database (it is disposed of next)."""
        self._closing.append(callback)

    def close(self) -> None:
        """Stop what :meth:`on_close` was given, release the queue and the database
        connections."""
        for callback in self._closing:
            callback()
        self.jobs.close()
        self.db.dispose()

    def _patches_job(self, payload: dict[str, Any]) -> None:
        """The ``patches`` job (queued by every publish): ``{"release_id": N}``."""
        self.make_patches(int(payload["release_id"]))

    def mail_settings(self) -> MailSettings:
        """What composing and sending e-mail needs (links carry the public address)."""
        settings = self.settings
        return MailSettings(
            vendor_name=settings.vendor_name,
            public_base_url=settings.public_base_url,
            renewal_url=settings.renewal_url,
            secret_key=settings.secret_key,
            mail_from=settings.mail_from,
            reply_to=settings.mail_reply_to,
            max_attempts=settings.job_max_attempts,
        )

    def mailer(self) -> Mailer | None:
        """The SMTP server e-mail goes to, or None when VIGOR_SMTP_URL names none."""
        if not self.settings.smtp_url:
            return None
        return SmtpMailer(self.settings.smtp_url, vendor_name=self.settings.vendor_name)

    def _email_job(self, payload: dict[str, Any]) -> None:
        """The ``email`` job (one per queued e-mail): ``{"email_id": N}``."""
        with self.db.sessions() as session:
            emails.send(
                session, int(payload["email_id"]), self.mailer(), self.mail_settings(), utcnow()
            )

    def _reminders_job(self, payload: dict[str, Any]) -> None:
        """The ``reminders_scan`` job (hourly, and on demand): queue the reminders due now."""
        self.settings.require_secret()  # the unsubscribe links are signed
        with self.db.sessions() as session:
            emails.scan_reminders(session, self.mail_settings(), utcnow())

    def _security_notices_job(self, payload: dict[str, Any]) -> None:
        """The ``security_notices`` job (queued by publishing a security revision)."""
        with self.db.sessions() as session:
            emails.security_notices(
                session, self.mail_settings(), int(payload["release_id"]), utcnow()
            )

    def _contract_events_job(self, payload: dict[str, Any]) -> None:
        """The ``contract_events_scan`` job (queued hourly by the worker): ``{}``."""
        with self.db.sessions() as session:
            contract_events.scan(
                session, utcnow().date(), window=self.settings.contract_expiring_days
            )

    def make_patches(self, release_id: int) -> int:
        """Generate the missing patches to a published release (its own session); each patch
        not made is recorded with why (server/domain/patches.py)."""
        from server.domain.models import Release
        from server.domain.patches import generate_patches

        with self.db.sessions() as session:
            release = session.get(Release, release_id)
            if release is None or release.is_draft:
                return 0
            return generate_patches(
                session,
                self.store,
                self.signer("release"),
                release,
                count=self.settings.patch_from_releases,
                time_limit=self.settings.patch_time_limit,
            )

    def signer(self, role: str) -> KeySigner:
        """The online key the newest root names for ``role`` (``release`` or ``check``).

        Raises:
            SigningError: no root yet, or its key for ``role`` is missing or unreadable.
        """
        try:
            return self.keyring.signer_for(self.root(), role)
        except (TrustError, KeyFileError) as exc:
            raise SigningError(str(exc)) from exc
