"""Downloading the offered artifact: resumable, verified, kept for a later `apply`.

Step 4 of an update (agent.py narrates the whole), in order:

1. A verified file already in ``downloads/<sha256>`` is hashed again before it is reused: a file
   in the state directory is not trusted just for being there.
2. Free space is checked for the bytes still missing (plus the configured margin).
3. Bytes go to ``downloads/<sha256>.part``, resuming what an earlier run left, hashed while they
   stream (fetch.py). A wrong length or SHA-256 is refused and the partial file removed; when
   bytes kept from an earlier run were part of it, the download runs once more from zero (those
   bytes may be what was wrong). An expired link is replaced by a fresh one, once.
4. The verified file is renamed to ``downloads/<sha256>`` and the directory fsynced.

The agent then keeps the verified offer in ``pending.json`` for a later `apply` (agent.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from client_agent.errors import ArtifactError, DownloadExpiredError
from client_agent.fetch import Fetcher, Progress
from client_agent.files import fsync_dir, hash_file
from client_agent.install import Layout, check_free_space
from client_agent.progress import terminal_progress
from client_agent.verify import Artifact, check_artifact

__all__ = [
    "Downloads",
]


@dataclass(frozen=True)
class Downloads:
    """``state_dir/downloads``: files fetched into it, resuming, and verified before they are kept.

    Args:
        layout: where ``downloads/`` and the installed version's kept files are.
        fetcher: the network.
        auth_for: the headers for a URL (the license only for the server's own origin).
        free_space_margin: bytes that must stay free beyond the download itself.
    """

    layout: Layout
    fetcher: Fetcher
    auth_for: Callable[[str], Mapping[str, str]]
    free_space_margin: int

    def fetch(self, url: str, part: Path, size: int, sha256: str, progress: Progress | None) -> str:
        """Fetch ``url`` into ``part`` (resuming), at most ``size`` bytes; its hex SHA-256."""
        return self.fetcher.download(url, part, size, sha256, progress, self.auth_for(url))

    def artifact(self, artifact: Artifact, url: str, fresh_url: Callable[[], str]) -> Path:
        """The artifact in ``downloads/<sha256>``, fetched unless already there and intact.

        ``fresh_url`` is asked, once, for a new link when ``url`` has expired.

        Raises:
            ArtifactError: the bytes are not the manifest's (the partial file is removed).
            DownloadError: the network failed, or no fresh link came; what arrived is kept for
                the next resume. A ``RateLimitedError`` among them carries the server's
                Retry-After, for the caller to remember.
            InstallError: not enough free disk space.
        """
        final = self.layout.downloaded(artifact.sha256)
        if final.exists():
            length, digest = hash_file(final)
            if (length, digest.hexdigest()) == (artifact.size, artifact.sha256):
                return final
            final.unlink()
        part = final.with_name(artifact.sha256 + ".part")
        have = part.stat().st_size if part.exists() else 0
        check_free_space(
            part.parent, max(artifact.size - have, 0), self.free_space_margin, "the download"
        )
        try:
            self._fetch_verified(url, part, artifact, fresh_url)
        except ArtifactError:
            if not have:
                raise
            # The bytes kept from an earlier run may be what is wrong: once more from zero.
            self._fetch_verified(url, part, artifact, fresh_url)
        os.replace(part, final)
        fsync_dir(final.parent)
        return final

    def _fetch_verified(
        self, url: str, part: Path, artifact: Artifact, fresh_url: Callable[[], str]
    ) -> None:
        """Fetch into ``part`` and check length and SHA-256; a refused file is removed."""
        try:
            progress = terminal_progress(artifact.size)
            try:
                digest_hex = self.fetch(url, part, artifact.size, artifact.sha256, progress)
            except DownloadExpiredError:
                # Download links are short-lived: ask for a fresh one, once, for the same bytes.
                digest_hex = self.fetch(fresh_url(), part, artifact.size, artifact.sha256, progress)
            check_artifact(part.stat().st_size, digest_hex, artifact)
        except ArtifactError:
            part.unlink(missing_ok=True)
            raise
