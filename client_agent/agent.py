"""The orchestrator: trust, check, download, apply, report. Network and disk live here.

State directory::

    state.json          installation id, previous version, "not before" (Retry-After)
    root/<n>.json       every root accepted, newest trusted
    last-check.json     the last verified check response (for `download` and `apply`)
    manifests/<v>.json  the signed manifest of each version installed (for `verify`)
    downloads/          <sha256>.part while downloading; <sha256> once verified
    reports.json        apply reports not yet delivered
    apply-journal.json  present only while an apply is in flight (see install.py)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from packaging.version import Version

from client_agent import install
from client_agent.config import AgentConfig
from client_agent.delta import apply_delta, content_of
from client_agent.errors import (
    AgentError,
    ArtifactError,
    ConfigError,
    DownloadError,
    DownloadExpiredError,
    InstallError,
    VerificationError,
)
from client_agent.fetch import Fetcher, UrllibFetcher, sha256_file, terminal_progress
from client_agent.verify import (
    CheckAnswer,
    Manifest,
    TrustedRoot,
    check_root_fresh,
    trust_initial_root,
    verify_check,
    verify_manifest,
    verify_next_root,
)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    """What `update`/`apply` did, for the CLI to print and turn into an exit code."""

    applied: bool
    version: str | None
    message: str
    due: bool = True


class Agent:
    """One installation's agent. ``fetcher`` and ``clock`` are seams for tests."""

    def __init__(
        self, config: AgentConfig, fetcher: Fetcher | None = None, clock: Clock = _utcnow
    ) -> None:
        self.config = config
        self.fetcher: Fetcher = fetcher or UrllibFetcher(
            config.connect_timeout,
            config.read_timeout,
            config.proxy,
            config.download_attempts,
            config.download_total_seconds,
        )
        self.clock = clock
        self.offline = False  # set by an offline import: reports are queued, never sent
        self.layout = install.Layout(config.install_dir, config.state_dir)
        self.state_dir = config.state_dir
        try:
            for sub in ("root", "manifests", "downloads"):
                (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot use state_dir {self.state_dir}: {exc.strerror}") from None
        self.state = self._load_state()

    # ------------------------------------------------------------------ state

    def _load_state(self) -> dict[str, Any]:
        path = self.state_dir / "state.json"
        state: dict[str, Any] = {}
        if path.exists():
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                state = {}
        if not isinstance(state.get("installation_id"), str):
            state["installation_id"] = "inst-" + secrets.token_hex(16)
            install.write_atomic(path, json.dumps(state).encode())
        return state

    def _save_state(self) -> None:
        install.write_atomic(
            self.state_dir / "state.json", json.dumps(self.state, indent=1).encode()
        )

    @property
    def installation_id(self) -> str:
        value: str = self.state["installation_id"]
        return value

    def installed_version(self) -> Version | None:
        text = self.layout.current_version() or self.config.installed_version
        return Version(text) if text else None

    # ------------------------------------------------------------------ trust

    def trusted_root(self) -> TrustedRoot:
        """The newest root already accepted (no network)."""
        stored = sorted(
            (int(p.stem), p) for p in (self.state_dir / "root").glob("*.json") if p.stem.isdigit()
        )
        if stored:
            return self._load_root_chain(stored)
        try:
            shipped = json.loads(self.config.trusted_root.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the trusted root {self.config.trusted_root}: {exc}"
            ) from None
        root = trust_initial_root(shipped)
        install.write_atomic(
            self.state_dir / "root" / f"{root.version}.json", json.dumps(shipped).encode()
        )
        return root

    def _load_root_chain(self, stored: list[tuple[int, Path]]) -> TrustedRoot:
        # Re-verify the persisted chain from its first link: a file edited on disk is caught.
        root = trust_initial_root(json.loads(stored[0][1].read_text()))
        for _, path in stored[1:]:
            root = verify_next_root(root, json.loads(path.read_text()))
        return root

    def refresh_root(self) -> TrustedRoot:
        """Walk ``root/<n+1>.json`` until the server has no newer one; persist each link."""
        root = self.trusted_root()
        for _ in range(self.config.max_root_walk):
            reply = self.fetcher.get_json(
                f"{self.config.server_url}/api/v1/root/{root.version + 1}.json",
                self.config.max_document_bytes,
            )
            if reply is None:
                break
            root = verify_next_root(root, reply.body)
            install.write_atomic(
                self.state_dir / "root" / f"{root.version}.json", json.dumps(reply.body).encode()
            )
        check_root_fresh(root, self.clock())
        return root

    # ------------------------------------------------------------------ check

    def _wait_if_asked(self) -> None:
        not_before = self.state.get("not_before")
        if not_before and datetime.fromisoformat(not_before) > self.clock():
            raise DownloadError(
                f"the server asked to wait until {not_before}; not contacting it before then"
            )

    def check(self, allow_downgrade: bool = False) -> CheckAnswer:
        """Ask the server what this installation may have; verify the answer completely."""
        self._wait_if_asked()
        root = self.refresh_root()
        nonce = secrets.token_hex(16)
        installed = self.installed_version()
        body = {
            "product": self.config.product,
            "version": str(installed or "0"),
            "platform": self.config.platform,
            "channel": self.config.channel,
            "installation_id": self.installation_id,
            "nonce": nonce,
        }
        reply = self.fetcher.post_json(
            f"{self.config.server_url}/api/v1/check",
            body,
            {"Authorization": f"License {self.config.license_key}"},
            self.config.max_document_bytes,
        )
        if reply.status == 429:
            wait = (reply.retry_after or 60.0) * (1 + random.random() * 0.1)  # noqa: S311 - jitter
            until = self.clock() + timedelta(seconds=wait)
            self.state["not_before"] = until.isoformat()
            self._save_state()
            raise DownloadError(
                f"the server is busy; it asked to wait {wait:.0f} s (until {until:%H:%M:%S})"
            )
        self.state.pop("not_before", None)
        answer = verify_check(
            reply.body,
            root,
            nonce=nonce,
            installation_id=self.installation_id,
            product=self.config.product,
            platform=self.config.platform,
            installed=installed,
            now=self.clock(),
            allow_downgrade=allow_downgrade,
        )
        install.write_atomic(self.state_dir / "last-check.json", json.dumps(reply.body).encode())
        self.state["last_check"] = {"nonce": nonce, "installed": str(installed or "0")}
        self._save_state()
        return answer

    def last_check(self, allow_downgrade: bool = False) -> CheckAnswer:
        """The last verified check, verified again (for `download`/`apply` run later)."""
        path = self.state_dir / "last-check.json"
        meta = self.state.get("last_check")
        if not path.exists() or not isinstance(meta, dict):
            raise AgentError("no check yet: run `vigor-agent check` first")
        root = self.trusted_root()
        return verify_check(
            json.loads(path.read_text()),
            root,
            nonce=meta["nonce"],
            installation_id=self.installation_id,
            product=self.config.product,
            platform=self.config.platform,
            installed=self.installed_version(),
            now=self.clock(),
            allow_downgrade=allow_downgrade,
        )

    # ------------------------------------------------------------------ download

    def download(self, answer: CheckAnswer, allow_downgrade: bool = False) -> Path:
        """The offered artifact, downloaded (resuming), length- and SHA-256-verified."""
        manifest, url = answer.manifest, answer.download_url
        if manifest is None or url is None:
            raise AgentError("there is no update to download")
        artifact = manifest.artifact
        final = self.state_dir / "downloads" / artifact.sha256
        if final.exists() and sha256_file(final) == artifact.sha256:
            return final
        part = final.with_name(artifact.sha256 + ".part")
        have = part.stat().st_size if part.exists() else 0
        free = shutil.disk_usage(self.state_dir).free
        if free < artifact.size - have + self.config.free_space_margin:
            raise DownloadError(
                f"not enough free space in {self.state_dir}: {artifact.size - have} bytes needed, {free} free"
            )
        try:
            self.fetcher.download(
                url, part, artifact.size, artifact.sha256, terminal_progress(artifact.size)
            )
        except DownloadExpiredError:
            fresh = self.check(allow_downgrade)  # the link expired: ask for a fresh one, once
            if (
                fresh.manifest is None
                or fresh.manifest.artifact.sha256 != artifact.sha256
                or not fresh.download_url
            ):
                raise
            self.fetcher.download(
                fresh.download_url,
                part,
                artifact.size,
                artifact.sha256,
                terminal_progress(artifact.size),
            )
        if part.stat().st_size != artifact.size:
            part.unlink(missing_ok=True)
            raise ArtifactError(
                f"the download is {part.stat().st_size} bytes, the manifest says {artifact.size}"
            )
        digest = sha256_file(part)
        if digest != artifact.sha256:
            part.unlink(missing_ok=True)
            raise ArtifactError(
                f"the download's SHA-256 {digest[:16]}… does not match the manifest's"
            )
        os.replace(part, final)
        install.fsync_dir(final.parent)
        return final

    # ------------------------------------------------------------------ apply

    # ------------------------------------------------------------------ delta patches

    def _content_path(self, sha: str) -> Path:
        return self.state_dir / "downloads" / f"content-{sha}"

    def _installed_content(self, wanted_sha: str) -> Path | None:
        """The uncompressed content of the installed version, kept or rebuilt from its artifact."""
        kept = self._content_path(wanted_sha)
        if kept.exists():
            return kept
        current = self.layout.current_version()
        manifest_file = self.state_dir / "manifests" / f"{current}.json"
        if current is None or not manifest_file.exists():
            return None  # installed by something else: no artifact to patch from
        artifacts = json.loads(manifest_file.read_text())["signed"].get("artifacts", {})
        shas = [a.get("sha256") for a in artifacts.values() if isinstance(a, dict)]
        for sha in shas:
            artifact = self.state_dir / "downloads" / str(sha)
            if artifact.exists():
                tmp = kept.with_name(kept.name + ".tmp")
                if content_of(artifact, tmp) == wanted_sha:
                    os.replace(tmp, kept)
                    return kept
                tmp.unlink(missing_ok=True)
        return None

    def download_patch(self, answer: CheckAnswer) -> tuple[Path, int] | None:
        """The offered release's content rebuilt from a patch, or None to download in full.

        Any failure (a patch that does not verify, an installed artifact that is gone, a result
        whose SHA-256 differs from the signed one) falls back to the full download, and a patch
        that failed is remembered so that it is not tried again.
        """
        patch = answer.patch
        failed = self.state.setdefault("failed_patches", [])
        if patch is None or patch.sha256 in failed:
            return None
        old = self._installed_content(patch.from_content_sha256)
        if old is None:
            return None
        target = self._content_path(patch.content_sha256)
        part = self.state_dir / "downloads" / f"{patch.sha256}.part"
        built = target.with_name(target.name + ".part")
        try:
            self.fetcher.download(
                patch.url, part, patch.size, patch.sha256, terminal_progress(patch.size)
            )
            if sha256_file(part) != patch.sha256:
                raise ArtifactError("the patch does not match its signed SHA-256")
            if apply_delta(old, part, built, patch.content_size) != patch.content_sha256:
                raise ArtifactError("the patched content does not match its signed SHA-256")
            os.replace(built, target)
        except AgentError:
            failed.append(patch.sha256)
            self._save_state()
            built.unlink(missing_ok=True)
            return None
        finally:
            part.unlink(missing_ok=True)
        return target, patch.size

    def recover(self) -> str | None:
        """Finish or undo what an interrupted run left; report an undone apply."""
        undone = install.recover(self.layout)
        if undone:
            self.report(
                undone,
                self.installed_version(),
                "rolled_back",
                "interrupted",
                "an apply was interrupted before its health check; the previous version runs again",
            )
        return undone

    def apply(
        self, manifest: Manifest, artifact: Path, content_sha256: str | None = None
    ) -> Outcome:
        """Stage, switch, health-check; on failure switch back. Reports the outcome.

        ``artifact`` is the release's artifact, or (``content_sha256`` given, from a verified
        patches document) its uncompressed content rebuilt from a patch.
        """
        expected = content_sha256 or manifest.artifact.sha256
        if sha256_file(artifact) != expected:
            raise ArtifactError("the downloaded artifact no longer matches its manifest")
        old = self.layout.current_version()
        new = str(manifest.version)
        try:
            filename = "content.tar" if content_sha256 else manifest.artifact.filename
            install.stage(self.layout, artifact, filename, new)
        except InstallError as exc:
            self.report(new, Version(old) if old else None, "failure", "archive_refused", str(exc))
            raise
        install.begin(self.layout, old, new)
        install.switch(self.layout, new)
        install._crash_point("switched")
        try:
            install.health_check(
                self.layout, self.config.health_check, self.config.health_check_seconds
            )
        except InstallError as exc:
            if old is not None:
                install.switch(self.layout, old)
            else:
                self.layout.current.unlink(missing_ok=True)
            install.finish(self.layout)
            self.report(
                new, Version(old) if old else None, "rolled_back", "health_check_failed", str(exc)
            )
            raise InstallError(
                f"{exc}; {'version ' + old if old else 'the previous state'} restored"
            ) from None
        install._crash_point("healthy")
        install.write_atomic(
            self.state_dir / "manifests" / f"{new}.json", json.dumps(manifest.document).encode()
        )
        self.state["previous_version"] = old
        self._save_state()
        install.finish(self.layout)
        self.report(new, Version(old) if old else None, "success")
        return Outcome(True, new, f"updated {old} → {new}" if old else f"installed {new}")

    def update(
        self, when_due: bool = False, allow_downgrade: bool = False
    ) -> tuple[Outcome, CheckAnswer]:
        """Check, download, verify and apply the offered update."""
        self.recover()
        self.flush_reports()
        answer = self.check(allow_downgrade)
        if answer.manifest is None:
            return Outcome(False, None, "up to date"), answer
        if when_due and not self.is_due(answer):
            return Outcome(
                False, str(answer.manifest.version), "update available but not yet due", due=False
            ), answer
        patched = self.download_patch(answer)
        if patched is not None and answer.patch is not None:
            outcome = self.apply(
                answer.manifest, patched[0], content_sha256=answer.patch.content_sha256
            )
            saved = answer.manifest.artifact.size - patched[1]
            return Outcome(
                True,
                outcome.version,
                f"{outcome.message} (patch of {patched[1]} bytes instead of "
                f"{answer.manifest.artifact.size}; {saved} saved)",
            ), answer
        artifact = self.download(answer, allow_downgrade)
        return self.apply(answer.manifest, artifact), answer

    def is_due(self, answer: CheckAnswer) -> bool:
        """Critical security revisions at once; others when their apply-by time has come."""
        manifest = answer.manifest
        if manifest is None:
            return False
        if manifest.severity == "critical" or answer.apply_by is None:
            return True
        return answer.apply_by <= self.clock()

    def rollback(self) -> Outcome:
        self.recover()
        previous = self.state.get("previous_version")
        current = self.layout.current_version()
        if not previous or not self.layout.version_dir(previous).is_dir():
            raise InstallError("there is no previous version to roll back to")
        install.begin(self.layout, current, previous)
        install.switch(self.layout, previous)
        try:
            install.health_check(
                self.layout, self.config.health_check, self.config.health_check_seconds
            )
        except InstallError as exc:
            if current:
                install.switch(self.layout, current)
            install.finish(self.layout)
            raise InstallError(f"{exc}; staying on {current}") from None
        self.state["previous_version"] = current
        self._save_state()
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

    def verify(self) -> list[str]:
        """Re-verify offline: the root chain, the installed version's manifest and artifact."""
        problems: list[str] = []
        root = self.trusted_root()
        current = self.layout.current_version()
        if current is None:
            return ["nothing is installed"]
        path = self.state_dir / "manifests" / f"{current}.json"
        if not path.exists():
            return [
                f"no signed manifest is kept for {current} (installed by something other than the agent)"
            ]
        try:
            manifest = verify_manifest(
                json.loads(path.read_text()),
                root,
                product=self.config.product,
                platform=self.config.platform,
                installed=None,
            )
        except VerificationError as exc:
            return [f"manifest of {current}: {exc}"]
        artifact = self.state_dir / "downloads" / manifest.artifact.sha256
        if artifact.exists() and sha256_file(artifact) != manifest.artifact.sha256:
            problems.append(f"the kept artifact of {current} does not match its manifest")
        if not self.layout.version_dir(current).is_dir():
            problems.append(f"versions/{current} is missing")
        return problems

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
        body = {
            "installation_id": self.installation_id,
            "product": self.config.product,
            "version": version,
            "from_version": str(from_version) if from_version else None,
            "outcome": outcome,
            "code": code,
            "message": (message or "")[:2000] or None,
        }
        pending = [*self._pending(), body]
        self._write_pending(pending)
        if not self.offline:
            self.flush_reports()

    def pending_reports(self) -> list[dict[str, Any]]:
        """Reports not yet delivered (an offline machine carries them back in its status file)."""
        return self._pending()

    def _pending(self) -> list[dict[str, Any]]:
        path = self.state_dir / "reports.json"
        try:
            value = json.loads(path.read_text()) if path.exists() else []
        except (OSError, ValueError):
            value = []
        return value if isinstance(value, list) else []

    def _write_pending(self, pending: list[dict[str, Any]]) -> None:
        install.write_atomic(self.state_dir / "reports.json", json.dumps(pending[-100:]).encode())

    def flush_reports(self) -> None:
        pending = self._pending()
        left = []
        for body in pending:
            try:
                self.fetcher.post_json(
                    f"{self.config.server_url}/api/v1/report",
                    body,
                    {"Authorization": f"License {self.config.license_key}"},
                    65536,
                )
            except AgentError:
                left.append(body)  # best effort: a failed report never fails the update
        if left != pending:
            self._write_pending(left)

    # ------------------------------------------------------------------ schedule

    def next_check_delay(self) -> float:
        """Seconds to the next check: the interval ±10% jitter, never before the server's Retry-After."""
        delay = self.config.check_interval * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not crypto
        not_before = self.state.get("not_before")
        if not_before:
            delay = max(delay, (datetime.fromisoformat(not_before) - self.clock()).total_seconds())
        return delay

    def run_forever(
        self, sleep: Callable[[float], None] = time.sleep
    ) -> None:  # pragma: no cover - loop
        while True:
            with contextlib.suppress(AgentError):  # each failure was reported; try again later
                self.update(when_due=True)
            sleep(self.next_check_delay())
