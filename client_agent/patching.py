"""Delta patches: the offered release rebuilt from the installed one (formats in delta.py).

The check may offer a patch from the installed version, described by the release's signed
``patches`` document (verified with the check, see verify.verify_patch). The agent needs the
uncompressed content of the installed version: kept from an earlier patch, or rebuilt from the
installed version's artifact kept in ``downloads/``. The result must hash to the signed
``content_sha256``; anything that goes wrong falls back to the full download, says why, and a
patch that failed is remembered so that it is not tried again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from client_agent.delta import apply_delta, content_of
from client_agent.downloads import Downloads
from client_agent.errors import AgentError, ArtifactError
from client_agent.progress import terminal_progress
from client_agent.state import StateStore
from client_agent.verify import CheckAnswer

__all__ = ["PatchResult", "download_patch", "installed_content"]


@dataclass(frozen=True)
class PatchResult:
    """A patch that was tried: the content it rebuilt, or why it did not apply."""

    content: Path | None  # the offered release's content; None: download the full artifact
    size: int  # the patch's size in bytes
    failure: str | None = None  # why it did not apply (when ``content`` is None)


def _content_path(downloads: Downloads, sha256: str) -> Path:
    return downloads.layout.downloads / f"content-{sha256}"


def installed_content(downloads: Downloads, wanted_sha256: str) -> Path | None:
    """The uncompressed content of the installed version, kept or rebuilt; None if unavailable.

    Args:
        downloads: ``downloads/``, where the installed version's artifact and content are kept.
        wanted_sha256: the content's SHA-256 the patch applies to.
    """
    kept = _content_path(downloads, wanted_sha256)
    if kept.exists():
        return kept
    current = downloads.layout.current_version()
    if current is None:
        return None  # nothing installed: no artifact to patch from
    # No kept manifest: installed by something else, so no artifact of it was kept either.
    for digest in downloads.layout.kept_artifact_digests(current):
        source = downloads.layout.downloaded(digest)
        if not source.exists():
            continue
        tmp = kept.with_name(kept.name + ".tmp")
        try:
            if content_of(source, tmp) == wanted_sha256:
                os.replace(tmp, kept)
                return kept
        except (OSError, EOFError):
            pass  # not a readable archive: no patch from it
        tmp.unlink(missing_ok=True)
    return None


def download_patch(
    downloads: Downloads, state: StateStore, answer: CheckAnswer
) -> PatchResult | None:
    """The offered release's content rebuilt from a patch, or why the patch failed; None when
    no patch was tried (none offered, one that failed before, or no installed content).

    Args:
        downloads: how to fetch (the license only to the server) and where files go.
        state: ``state.json``, which remembers the patches that failed (not tried again).
        answer: the verified check answer; its ``patch`` is the verified offer, if any.
    """
    patch = answer.patch
    failed: list[str] = list(state.get("failed_patches", []))
    if patch is None or patch.sha256 in failed:
        return None
    old = installed_content(downloads, patch.from_content_sha256)
    if old is None:
        return None
    target = _content_path(downloads, patch.content_sha256)
    part = downloads.layout.downloads / f"{patch.sha256}.part"
    built = target.with_name(target.name + ".part")
    try:
        digest = downloads.fetch(
            patch.url, part, patch.size, patch.sha256, terminal_progress(patch.size)
        )
        if digest != patch.sha256 or part.stat().st_size != patch.size:
            raise ArtifactError("the patch does not match its signed SHA-256")
        rebuilt = apply_delta(old, part, built, patch.content_size, patch.format)
        if rebuilt != patch.content_sha256:
            raise ArtifactError("the patched content does not match its signed SHA-256")
        os.replace(built, target)
    except AgentError as exc:
        state.set("failed_patches", [*failed, patch.sha256])
        built.unlink(missing_ok=True)
        return PatchResult(None, patch.size, " ".join(str(exc).split()))
    finally:
        part.unlink(missing_ok=True)
    return PatchResult(target, patch.size)
