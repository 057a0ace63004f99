"""The long-lived parts an app process holds: database, artifact store, online keys."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from server.config import Settings
from server.db import Database
from server.domain import roots
from server.domain.catalog import CatalogCache
from server.domain.checks import CheckService
from server.domain.errors import SigningError
from server.domain.trust import KeySigner, Root, TrustError
from server.keyring import KeyFileError, Keyring
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
    _background: list[threading.Thread] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.checks = CheckService(self.catalogs, lambda: self.signer("check"), self.settings)

    @classmethod
    def from_settings(cls, settings: Settings, store: ArtifactStore | None = None) -> Services:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            store=store if store is not None else store_from_settings(settings),
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

    def patches_in_background(self, release_id: int, label: str) -> None:
        """Make patches to a just-published release without delaying the answer."""
        from server.domain.patches import generate_in_background

        with self._lock:
            self._background = [t for t in self._background if t.is_alive()]
            self._background.append(
                generate_in_background(lambda: self.make_patches(release_id), label)
            )

    def close(self, timeout: float = 60.0) -> None:
        """Let background work finish, then release database connections."""
        with self._lock:
            pending = list(self._background)
        for thread in pending:
            thread.join(timeout)
        self.db.dispose()

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
