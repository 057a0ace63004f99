"""Artifact storage: the ``ArtifactStore`` seam and its implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.storage.base import (
    ArtifactStore,
    BlobNotFoundError,
    SizeLimitError,
    StorageError,
    StoredBlob,
    Sweep,
)

__all__ = [
    "ArtifactStore",
    "BlobNotFoundError",
    "SizeLimitError",
    "StorageError",
    "StoredBlob",
    "Sweep",
    "make_store",
]


def make_store(backend: str, **options: Any) -> ArtifactStore:
    """Build a store from plain values (``Settings`` decides which; nothing here reads the env)."""
    if backend == "local":
        from server.storage.local import LocalStore

        return LocalStore(Path(options["root"]))
    if backend == "s3":
        from server.storage.s3 import S3Store

        store: ArtifactStore = S3Store(**options)
        return store
    raise StorageError(f"unknown storage backend {backend!r}")
