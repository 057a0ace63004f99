"""The installer: a verified artifact becomes the running version, or nothing changes.

It owns everything an apply leaves on disk, on top of the layout's primitives (install.py):

1. The artifact (or the content rebuilt from a patch) is hashed once more: a file in the state
   directory is not trusted just for being there.
2. Stage beside, journal, switch ``current`` atomically, health-check (install.py narrates why a
   crash at any point is harmless). A failed health check switches back, removes the failed
   version and its kept manifest; a failed stage changes nothing.
3. Once the new version is confirmed healthy, the bookkeeping: ``previous_version`` in
   ``state.json`` (what ``rollback`` returns to), the journal removed, versions other than the
   current and previous one pruned, and with them their downloads and kept manifests.
4. Every outcome is reported (``success``, ``failure``, ``rolled_back``) through the ``report``
   the agent hands in, which queues it durably and sends it best effort.

:meth:`Installer.recover` settles what an interrupted run left, and reports it the same way;
:meth:`Installer.verify_installed` re-checks, offline, what it kept for the installed version.
The caller holds the installation's lock (``Agent.exclusive``) around every method.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from client_agent import install
from client_agent.config import AgentConfig
from client_agent.errors import ArtifactError, InstallError, VerificationError
from client_agent.files import crash_point, hash_file, write_atomic
from client_agent.roots import TrustedRoot
from client_agent.state import StateStore
from client_agent.verify import Manifest, check_artifact, verify_manifest

__all__ = [
    "Installer",
    "Outcome",
    "Report",
]


@dataclass(frozen=True)
class Outcome:
    """What `update`/`apply`/`rollback` did, for the CLI to print and turn into an exit code."""

    applied: bool
    version: str | None
    message: str
    due: bool = True
    # What a delta patch did: "patch of 103 KB instead of 9.5 MB", or why it did not apply and
    # the full download was used instead.
    patch: str | None = None


# How outcomes reach the server (``Agent.report``: queued durably, sent best effort): the
# version, the version it replaced, the outcome (``success``, ``failure``, ``rolled_back``), a
# short code (``health_check_failed``, ...) and a message.
Report = Callable[[str, Version | None, str, str | None, str | None], None]


class Installer:
    """Apply, roll back, recover and prune one installation's versions, and keep their books.

    Args:
        config: the health check, its time limit, the free-space margin; the product and
            platform a kept manifest must name.
        layout: where versions, ``current``, the journal and the kept files live.
        state: ``state.json``, for ``previous_version``.
        report: how outcomes reach the server.
    """

    def __init__(
        self, config: AgentConfig, layout: install.Layout, state: StateStore, report: Report
    ) -> None:
        self.config = config
        self.layout = layout
        self.state = state
        self.report = report

    # ------------------------------------------------------------------ recover

    def recover(self) -> install.Recovery:
        """Finish or undo what an interrupted run left, and report it."""
        found = install.recover(self.layout)
        if found.kind == "rollback":
            if found.completed:  # the rollback was confirmed: finish its bookkeeping
                self.state.set("previous_version", found.from_version)
            return found
        from_version = Version(found.from_version) if found.from_version else None
        if found.undone:
            self.report(
                found.undone,
                from_version,
                "rolled_back",
                "interrupted",
                "an apply was interrupted before its health check passed; "
                "the previous version runs again",
            )
        if found.completed:
            self._settled(found.from_version, found.completed)
        return found

    # ------------------------------------------------------------------ apply

    def apply(
        self, manifest: Manifest, artifact: Path, content_sha256: str | None = None
    ) -> Outcome:
        """Stage, switch, health-check; on failure switch back. Reports the outcome.

        ``artifact`` is the release's artifact, or (``content_sha256`` given, from a verified
        patches document) its uncompressed content rebuilt from a patch. Either is hashed once
        more first: a file in the state directory is not trusted just for being there.

        Raises:
            ArtifactError: the file is not (or no longer) what was verified; nothing changed.
            InstallError: staging or the health check failed; the previous version runs again.
        """
        self.layout.check_usable()
        length, digest = hash_file(artifact)
        if content_sha256 is not None:
            if digest.hexdigest() != content_sha256:
                raise ArtifactError("the patched content no longer matches its signed hash")
        else:
            check_artifact(length, digest.hexdigest(), manifest.artifact)
        old = self.layout.current_version()
        new = str(manifest.version)
        from_version = Version(old) if old else None
        filename = "content.tar" if content_sha256 else manifest.artifact.filename
        try:
            install.stage(
                self.layout,
                artifact,
                filename,
                new,
                self.config.free_space_margin,
                self.config.max_expansion_ratio,
                self.config.max_unpacked_bytes,
            )
        except InstallError as exc:
            self.report(new, from_version, "failure", exc.code, str(exc))
            raise
        # Kept before the switch: `verify` and patches need it, and it is already verified.
        write_atomic(self.layout.kept_manifest(new), json.dumps(manifest.document).encode())
        install.begin(self.layout, old, new)
        install.switch(self.layout, new)
        crash_point("switched")
        try:
            self._health_check(new)
        except InstallError as exc:
            self._switch_back(old, new)
            self.report(new, from_version, "rolled_back", "health_check_failed", str(exc))
            restored = f"version {old} restored" if old else "nothing was installed before"
            raise InstallError(f"{exc}; {restored}", code="health_check_failed") from None
        install.confirm(self.layout, old, new)
        crash_point("healthy")
        self.layout.pending.unlink(missing_ok=True)
        self._settled(old, new)
        return Outcome(True, new, f"updated {old or 'nothing'} → {new}")

    def _health_check(self, version: str) -> None:
        install.health_check(
            self.layout, version, self.config.health_check, self.config.health_check_seconds
        )

    def _switch_back(self, old: str | None, failed: str) -> None:
        if old is not None:
            install.switch(self.layout, old)
        else:
            self.layout.current.unlink(missing_ok=True)
        install.finish(self.layout)
        install.prune(self.layout, {v for v in (old, self.state.get("previous_version")) if v})
        self.layout.kept_manifest(failed).unlink(missing_ok=True)

    def _settled(self, old: str | None, new: str) -> None:
        """Bookkeeping once ``new`` is confirmed healthy: state, journal, old versions, report."""
        self.state.set("previous_version", old)
        install.finish(self.layout)
        install.prune(self.layout, {v for v in (old, new) if v})
        self._prune_downloads({v for v in (old, new) if v})
        self.report(new, Version(old) if old else None, "success", None, None)

    def _prune_downloads(self, keep_versions: set[str]) -> None:
        """Drop downloaded artifacts of versions no longer kept (the kept ones feed patches)."""
        keep = {d for version in keep_versions for d in self.layout.kept_artifact_digests(version)}
        for path in self.layout.downloads.iterdir():
            if len(path.name) == 64 and path.name not in keep:
                path.unlink(missing_ok=True)
        for path in self.layout.manifests.glob("*.json"):
            if path.stem not in keep_versions:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ rollback

    def rollback(self) -> Outcome:
        """Return to the version before the last update (kept for this), health-checked.

        Raises:
            InstallError: there is no previous version, or it failed its health check (the
                current version stays).
        """
        self.recover()
        previous = self.state.get("previous_version")
        current = self.layout.current_version()
        if not previous or not self.layout.version_dir(previous).is_dir():
            raise InstallError("there is no previous version to roll back to")
        install.begin(self.layout, current, previous, kind="rollback")
        install.switch(self.layout, previous)
        crash_point("switched")
        try:
            self._health_check(previous)
        except InstallError as exc:
            if current:
                install.switch(self.layout, current)
            install.finish(self.layout)
            raise InstallError(f"{exc}; staying on {current}") from None
        install.confirm(self.layout, current, previous, kind="rollback")
        self.state.set("previous_version", current)
        install.finish(self.layout)
        if current:
            self.report(
                current,
                Version(previous),
                "rolled_back",
                "manual_rollback",
                "rolled back by the operator",
            )
        return Outcome(True, previous, f"rolled back {current} → {previous}")

    # ------------------------------------------------------------------ verify

    def verify_installed(self, root: TrustedRoot) -> list[str]:
        """What no longer checks out about the installed version (offline): its directory, its
        kept manifest (against ``root``) and its kept artifact. Empty when all is well."""
        problems: list[str] = []
        current = self.layout.current_version()
        if current is None:
            return ["nothing is installed"]
        if not self.layout.version_dir(current).is_dir():
            problems.append(f"versions/{current} is missing")
        path = self.layout.kept_manifest(current)
        if not path.exists():
            problems.append(
                f"no signed manifest is kept for {current} "
                "(installed by something other than the agent)"
            )
            return problems
        try:
            manifest = verify_manifest(
                json.loads(path.read_text()),
                root,
                product=self.config.product,
                platform=self.config.platform,
                installed=None,
            )
        except (VerificationError, ValueError) as exc:
            problems.append(f"the kept manifest of {current} does not verify: {exc}")
            return problems
        if str(manifest.version) != current:
            problems.append(f"the kept manifest is for {manifest.version}, not {current}")
        artifact = self.layout.downloaded(manifest.artifact.sha256)
        if artifact.exists():
            length, digest = hash_file(artifact)
            try:
                check_artifact(length, digest.hexdigest(), manifest.artifact)
            except ArtifactError as exc:
                problems.append(f"the kept artifact of {current}: {exc}")
        return problems
