"""The orchestrator: trust, check, download, apply, report. Network and disk live here.

The agent decides what happens and in which order, and holds the installation's lock while it
changes anything; the installer (installer.py) carries out apply, rollback and recovery and
keeps their books.

An update, in order (each step refuses before the next one starts):

1. Settle whatever an interrupted run left (installer.py) and resend queued reports.
2. Unless the server asked to wait (Retry-After, schedule.py), walk the root chain (trust.py;
   each root verified by roots.py) and refuse an expired root.
3. ``POST /api/v1/check`` with a fresh nonce; verify the signed answer (verify.py): signatures,
   nonce and installation id echoed, product and platform, a newer version.
4. Download to ``downloads/<sha256>.part`` (resuming), hashing while streaming; refuse a wrong
   length or SHA-256; rename to ``downloads/<sha256>`` (downloads.py). When the check offers a
   verified patch, the release is rebuilt from the installed one instead (patching.py).
5. Stage beside, switch ``current`` atomically, health-check, switch back on failure; keep
   the previous version and prune older ones (installer.py, on the layout of install.py).
6. Report the outcome (reports.py); the installer reports through :meth:`Agent.report`.

State directory::

    state.json          installation id, previous version, "not before" (Retry-After), ...
    root/<n>.json       the shipped root and every root accepted since
    manifests/<v>.json  the signed manifest of each version the agent installed (for `verify`)
    downloads/          <sha256>.part while downloading; <sha256> once verified
    pending.json        the verified offer `download` fetched, for a later `apply`
    reports.json        apply reports not yet delivered
    apply-journal.json  present only while an apply is in flight (see install.py)
    agent.lock          held while an agent works on the installation
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from client_agent import install, patching, state
from client_agent.config import AgentConfig
from client_agent.delta import PATCH_FORMATS
from client_agent.downloads import Downloads
from client_agent.errors import (
    AgentError,
    ConfigError,
    DownloadError,
    RateLimitedError,
    VerificationError,
)
from client_agent.fetch import Fetcher, UrllibFetcher, same_origin
from client_agent.files import write_atomic
from client_agent.installer import Installer, Outcome
from client_agent.progress import human_size
from client_agent.reports import ReportQueue
from client_agent.roots import TrustedRoot, check_root_fresh
from client_agent.schedule import Schedule
from client_agent.trust import TrustStore
from client_agent.verify import CheckAnswer, Manifest, verify_check, verify_manifest

__all__ = [
    "Agent",
]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Agent:
    """One installation's agent. ``fetcher`` and ``clock`` are seams for tests."""

    def __init__(
        self, config: AgentConfig, fetcher: Fetcher | None = None, clock: Clock = _utcnow
    ) -> None:
        self.config = config
        self.fetcher: Fetcher = fetcher or UrllibFetcher(
            timeout=config.network_timeout,
            proxy=config.proxy,
            attempts=config.download_attempts,
            total_seconds=config.download_total_seconds,
            first_backoff=config.first_backoff_seconds,
            min_rate=config.download_min_rate,
            stall_seconds=config.download_stall_seconds,
            document_seconds=config.document_seconds,
        )
        self.clock = clock
        self.offline = False  # set by an offline import: reports are queued, never sent
        self.state_dir = config.state_dir
        state.prepare_state_dir(self.state_dir)
        self.layout = install.Layout(config.install_dir, config.state_dir)
        self.state = state.StateStore(self.state_dir)
        self.trust = TrustStore(config.trusted_root, self.state_dir / "root", config.server_url)
        self.reports = ReportQueue(self.state_dir / "reports.json", config.max_pending_reports)
        self.downloads = Downloads(
            self.layout, self.fetcher, self.auth_for, config.free_space_margin
        )
        self.installer = Installer(config, self.layout, self.state, self.report)
        self.schedule = Schedule(self.state, clock, config.check_interval, config.check_jitter)
        self._lock_depth = 0

    # ------------------------------------------------------------------ identity, lock

    @property
    def installation_id(self) -> str:
        """This installation's random id (made on first run, kept in ``state.json``)."""
        return self.state.installation_id

    def installed_version(self) -> Version | None:
        """What ``current`` points at; else the configured bootstrap version; else None."""
        current = self.layout.current_version()
        if current is not None:
            try:
                return Version(current)
            except InvalidVersion:
                if self.config.installed_version is None:
                    raise ConfigError(
                        f"cannot tell the installed version: current points at {current!r}; "
                        "set 'installed_version' in the config"
                    ) from None
        return Version(self.config.installed_version) if self.config.installed_version else None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the installation's lock (re-entrant within this agent)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with state.exclusive(self.state_dir):
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    def _license_headers(self) -> dict[str, str]:
        return {"Authorization": f"License {self.config.license_key}"}

    def auth_for(self, url: str) -> dict[str, str]:
        """The license for a download from the server itself; nothing for any other host."""
        return self._license_headers() if same_origin(url, self.config.server_url) else {}

    # ------------------------------------------------------------------ trust

    def trusted_root(self) -> TrustedRoot:
        """The newest root already accepted (no network, no expiry check)."""
        return self.trust.load()

    def refresh_root(self) -> TrustedRoot:
        """Walk the server's root chain, persisting each new root; refuse an expired one."""
        return self.trust.refresh(
            self.fetcher, self.clock(), self.config.max_root_walk, self.config.max_document_bytes
        )

    # ------------------------------------------------------------------ check

    def check(self, allow_downgrade: bool = False) -> CheckAnswer:
        """Ask the server what this installation may have; verify the answer completely."""
        self.schedule.refuse_if_asked()
        try:
            root = self.refresh_root()
            nonce = secrets.token_hex(16)
            installed = self.installed_version()
            body: dict[str, Any] = {
                "product": self.config.product,
                "version": str(installed or "0"),
                "platform": self.config.platform,
                "channel": self.config.channel,
                "installation_id": self.installation_id,
                "nonce": nonce,
                "patch_formats": list(PATCH_FORMATS),  # only these are offered
            }
            headers = self._license_headers()
            if self.config.language:  # the server writes its sentences in it, if it can
                headers["Accept-Language"] = self.config.language
            reply = self.fetcher.post_json(
                f"{self.config.server_url}/api/v1/check",
                body,
                headers,
                self.config.max_document_bytes,
            )
        except RateLimitedError as exc:
            raise self.schedule.remember(exc) from None
        self.schedule.answered()
        return verify_check(
            reply.body,
            root,
            nonce=nonce,
            installation_id=self.installation_id,
            product=self.config.product,
            platform=self.config.platform,
            installed=installed,
            now=self.clock(),
            channel=self.config.channel,
            sent_version=str(installed or "0"),
            license_key=self.config.license_key,
            allow_downgrade=allow_downgrade,
        )

    def is_due(self, answer: CheckAnswer) -> bool:
        """Critical security revisions at once; others when their apply-by time has come
        (no apply-by time: at the next convenient time, which is now)."""
        manifest = answer.manifest
        if manifest is None:
            return False
        if manifest.severity == "critical" or answer.apply_by is None:
            return True
        return answer.apply_by <= self.clock()

    # ------------------------------------------------------------------ download

    def downloaded_path(self, sha256: str) -> Path:
        """Where the verified artifact with this SHA-256 is kept."""
        return self.layout.downloaded(sha256)

    def download(self, answer: CheckAnswer, allow_downgrade: bool = False) -> Path:
        """The offered artifact, downloaded (resuming), its length and SHA-256 verified.

        Raises:
            ArtifactError: the bytes are not the manifest's (the partial file is removed).
            DownloadError: the network failed; what arrived is kept for the next resume.
            InstallError: not enough free disk space.
        """
        manifest, url = answer.manifest, answer.download_url
        if manifest is None or url is None:
            raise AgentError("there is no update to download")
        with self.exclusive():
            try:
                final = self.downloads.artifact(
                    manifest.artifact, url, lambda: self._fresh_url(manifest, url, allow_downgrade)
                )
            except RateLimitedError as exc:
                raise self.schedule.remember(exc) from None
            self._keep_pending(manifest, answer)
            return final

    def _fresh_url(self, manifest: Manifest, url: str, allow_downgrade: bool) -> str:
        """A new link for the same bytes, from a new check (download links are short-lived)."""
        fresh = self.check(allow_downgrade)
        if fresh.manifest is None or fresh.manifest.artifact.sha256 != manifest.artifact.sha256:
            raise DownloadError(
                "the download link expired and the server no longer offers this update",
                retryable=False,
            ) from None
        return fresh.download_url or url  # verify_check guarantees a URL with an offer

    def _keep_pending(self, manifest: Manifest, answer: CheckAnswer) -> None:
        """Remember the verified offer so that `apply` can install it later, offline."""
        pending = {
            "manifest": manifest.document,
            "apply_by": answer.apply_by.isoformat() if answer.apply_by else None,
        }
        write_atomic(self.layout.pending, json.dumps(pending).encode())

    def pending(self, allow_downgrade: bool = False) -> tuple[Manifest, Path] | None:
        """The offer `download` fetched, its manifest verified again; None when there is none."""
        path = self.layout.pending
        if not path.exists():
            return None
        try:
            pending = json.loads(path.read_text())
            document = pending["manifest"]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            return None
        root = self.trusted_root()
        check_root_fresh(root, self.clock())
        manifest = verify_manifest(
            document,
            root,
            product=self.config.product,
            platform=self.config.platform,
            installed=self.installed_version(),
            allow_downgrade=allow_downgrade,
        )
        artifact = self.downloaded_path(manifest.artifact.sha256)
        if not artifact.exists():
            return None
        return manifest, artifact

    # ------------------------------------------------------------------ apply (installer.py)

    def recover(self) -> install.Recovery:
        """Finish or undo what an interrupted run left; report it (takes the lock)."""
        with self.exclusive():
            return self.installer.recover()

    def recover_if_idle(self) -> None:
        """`recover` unless another agent holds the lock (read commands must not wait)."""
        with contextlib.suppress(AgentError):
            self.recover()

    def apply(
        self, manifest: Manifest, artifact: Path, content_sha256: str | None = None
    ) -> Outcome:
        """Stage, switch, health-check; on failure switch back. Reports the outcome.

        ``artifact`` is the release's artifact, or (``content_sha256`` given) its content
        rebuilt from a patch; see :meth:`Installer.apply` (this takes the lock around it).
        """
        with self.exclusive():
            return self.installer.apply(manifest, artifact, content_sha256)

    def update(
        self, when_due: bool = False, allow_downgrade: bool = False
    ) -> tuple[Outcome, CheckAnswer]:
        """Check, download, verify and apply the offered update."""
        with self.exclusive():
            recovered = self.recover()
            answer = self.check(allow_downgrade)
            self.flush_reports()  # after the check: the server is reachable, resend what waits
            if answer.manifest is None:
                if recovered.completed:
                    message = f"finished the interrupted update {recovered.from_version or 'nothing'} → {recovered.completed}"
                    return Outcome(True, recovered.completed, message), answer
                return Outcome(False, None, "up to date"), answer
            if when_due and not self.is_due(answer):
                version = str(answer.manifest.version)
                return Outcome(
                    False, version, f"{version} is available but not due yet", False
                ), answer
            patched = patching.download_patch(self.downloads, self.state, answer)
            full = human_size(answer.manifest.artifact.size)
            if patched is not None and patched.content is not None and answer.patch is not None:
                outcome = self.apply(answer.manifest, patched.content, answer.patch.content_sha256)
                note = f"patch of {human_size(patched.size)} instead of {full}"
                return dataclasses.replace(outcome, patch=note), answer
            artifact = self.download(answer, allow_downgrade)
            outcome = self.apply(answer.manifest, artifact)
            if patched is not None:  # tried, and it failed: said, and not tried again
                note = f"patch did not apply ({patched.failure}); downloading the full {full}"
                outcome = dataclasses.replace(outcome, patch=note)
            return outcome, answer

    def rollback(self) -> Outcome:
        """Return to the version before the last update (kept for this), health-checked."""
        with self.exclusive():
            return self.installer.rollback()

    def verify(self) -> list[str]:
        """Re-verify offline: the root chain, the installed version's manifest and artifact."""
        root = self.trusted_root()
        problems: list[str] = []
        try:
            check_root_fresh(root, self.clock())
        except VerificationError as exc:
            problems.append(str(exc))
        return [*problems, *self.installer.verify_installed(root)]

    # ------------------------------------------------------------------ reports

    def report(
        self,
        version: str,
        from_version: Version | None,
        outcome: str,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Tell the server what happened; queue it when the server cannot be reached."""
        self.reports.add(
            {
                "installation_id": self.installation_id,
                "product": self.config.product,
                "version": version,
                "from_version": str(from_version) if from_version else None,
                "outcome": outcome,
                "code": code,
                "message": (message or "")[:2000] or None,
            }
        )
        if not self.offline:
            self.flush_reports()

    def pending_reports(self) -> list[dict[str, Any]]:
        """Reports not yet delivered (an offline machine carries them back in its status file)."""
        return self.reports.pending()

    def flush_reports(self) -> None:
        """Send queued reports, best effort: a report that cannot be sent never fails anything."""
        self.reports.flush(
            self.fetcher, f"{self.config.server_url}/api/v1/report", self._license_headers()
        )

    # ------------------------------------------------------------------ schedule

    def next_check_delay(self) -> float:
        """Seconds to the next check: the interval with random jitter, and never before the
        time the server asked for (Retry-After, persisted across runs)."""
        return self.schedule.next_delay()

    def run_forever(
        self,
        on_result: Callable[[Outcome | AgentError], None],
        sleep: Callable[[float], None] = time.sleep,
        rounds: int | None = None,
    ) -> None:
        """`update --when-due` every check interval (with jitter), until stopped.

        ``rounds`` bounds the loop (tests); each round's outcome or error goes to ``on_result``.
        """
        done = 0
        while rounds is None or done < rounds:
            try:
                outcome, _ = self.update(when_due=True)
                on_result(outcome)
            except AgentError as exc:  # already explained and reported; try again later
                on_result(exc)
            done += 1
            if rounds is None or done < rounds:
                sleep(self.next_check_delay())
