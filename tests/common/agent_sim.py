"""A fake Vigor update server for agent tests: docs/protocol.md over real HTTP, with its own keys.

``AgentSim`` runs ``http.server`` in a thread on 127.0.0.1 (an ephemeral port), plus a second
"storage host" reached as ``localhost`` (another origin) for download redirects. It signs with
``cryptography`` directly and never imports ``server/``: it is a second, independent reading of
the protocol, so the agent's verifier is checked against something other than itself.

It publishes releases made of real .tar.gz/.zip archives and can be told to misbehave through
``sim.faults`` (a set of names, see ``FAULTS``), ``sim.force_offer`` (offer a given release
whatever the rules say), and two hooks that edit the check response before or after signing.

``Installation`` is an application installed from one of the sim's releases, with an
``agent.toml`` pointing at the sim, and helpers to run the agent's CLI (in process, or as a
subprocess for the kill -9 tests) and to look at the result.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

# Misbehaviours ``sim.faults`` may name.
FAULTS = {
    # downloads
    "flip-byte": "one byte of the artifact changed",
    "truncate": "the artifact is served half as long",
    "endless": "the body never ends (no Content-Length)",
    "announce-more": "Content-Length larger than the manifest's size",
    "gzip": "the artifact is sent with Content-Encoding: gzip",
    "ignore-range": "Range and If-Range are ignored (always 200 with everything)",
    "drop-once": "the first download breaks off after `drop_after` bytes",
    "redirect": "downloads redirect (302) to the storage host, another origin",
    "expire-first-link": "the first download link handed out has already expired (410)",
    "file-url": "the download URL offered is file:///etc/passwd",
    # check responses
    "bad-signature": "the check signature is corrupted",
    "no-signature": "the check carries no signatures",
    "unknown-key": "the check is signed by a key root does not name",
    "wrong-nonce": "the check echoes another nonce (a replay)",
    "wrong-installation": "the check echoes another installation id",
    "expired-check": "the check response expired an hour ago",
    "429": "the check answers 429 with Retry-After: `retry_after`",
    "revoked": "the license is revoked (403)",
    "check-500": "the check answers 500",
    "not-json": "the check answers 200 with HTML",
    "huge": "the check answer is larger than any document should be",
    # reports
    "report-500": "reports are refused with 500",
}


def iso(moment: datetime) -> str:
    """The protocol's time format: ``2026-11-25T05:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    """The current time, whole seconds (signed documents carry no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


def canonical(signed: dict[str, Any]) -> bytes:
    """The bytes a signature covers (docs/protocol.md)."""
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Key:
    """An Ed25519 key pair with its protocol key id."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = raw.hex()
        self.keyid = hashlib.sha256(raw).hexdigest()

    def signature(self, signed: dict[str, Any]) -> dict[str, str]:
        """``{"keyid", "sig"}`` over the canonical bytes of ``signed``."""
        return {"keyid": self.keyid, "sig": self.private.sign(canonical(signed)).hex()}


def sign(signed: dict[str, Any], keys: list[Key]) -> dict[str, Any]:
    """A signed document."""
    return {"signed": signed, "signatures": [k.signature(signed) for k in keys]}


def root_signed(
    version: int,
    expires: datetime,
    root_keys: list[Key],
    release_keys: list[Key],
    check_keys: list[Key] | None,
    root_threshold: int = 1,
) -> dict[str, Any]:
    """The ``signed`` part of a root (no ``check`` role when ``check_keys`` is None)."""
    every = {k.keyid: k for k in [*root_keys, *release_keys, *(check_keys or [])]}
    roles = {
        "root": {"keyids": [k.keyid for k in root_keys], "threshold": root_threshold},
        "release": {"keyids": [k.keyid for k in release_keys], "threshold": 1},
    }
    if check_keys is not None:
        roles["check"] = {"keyids": [k.keyid for k in check_keys], "threshold": 1}
    return {
        "type": "root",
        "version": version,
        "expires": iso(expires),
        "keys": {kid: {"scheme": "ed25519", "public": k.public} for kid, k in every.items()},
        "roles": roles,
    }


# --------------------------------------------------------------------------- archives


def _tar_info(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = mode, 0
    return info


def tar_gz(
    files: dict[str, bytes | str],
    *,
    symlinks: dict[str, str] | None = None,
    hardlinks: dict[str, str] | None = None,
    devices: list[str] | None = None,
    after: dict[str, bytes | str] | None = None,
    mode: int = 0o755,
) -> bytes:
    """A deterministic .tar.gz: ``files`` (path → content), links, devices, then ``after``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            _add_file(tar, name, content, mode)
        for kind, entries in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in (entries or {}).items():
                info = _tar_info(name, 0o777)
                info.type, info.linkname = kind, target
                tar.addfile(info)
        for name in devices or []:
            info = _tar_info(name)
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
        for name, content in (after or {}).items():
            _add_file(tar, name, content, mode)
    return gzip.compress(raw.getvalue(), mtime=0)


def _add_file(tar: tarfile.TarFile, name: str, content: bytes | str, mode: int) -> None:
    data = content.encode() if isinstance(content, str) else content
    info = _tar_info(name, mode)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def zip_archive(files: dict[str, bytes | str], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A .zip of ``files`` (executable), and symlink entries as a Unix zip tool writes them."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755) << 16
            zf.writestr(info, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o120777) << 16
            zf.writestr(info, target)
    return raw.getvalue()


def app_files(version: str, exit_code: int = 0, padding: int = 0) -> dict[str, bytes | str]:
    """A tiny runnable application: ``bin/app --version`` prints ``app <version>``.

    ``padding`` adds that many incompressible bytes (deterministic), to make downloads that
    take more than one read.
    """
    files: dict[str, bytes | str] = {
        "bin/app": f"#!/bin/sh\necho app {version}\nexit {exit_code}\n",
        "VERSION": f"{version}\n",
    }
    if padding:
        files["data/blob.bin"] = random.Random(version).randbytes(padding)
    return files


# --------------------------------------------------------------------------- releases


@dataclass
class Release:
    """One published version: its archive and the facts its manifest signs."""

    version: str
    archive: bytes
    filename: str
    platform: str = "linux-x86_64"
    kind: str = "update"
    severity: str | None = None
    published_at: datetime = field(default_factory=lambda: now() - timedelta(days=1))
    min_from: str | None = None
    product: str = "acme-erp"
    line: str = ""
    yanked: str | None = None  # the reason, once yanked
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the archive."""
        return hashlib.sha256(self.archive).hexdigest()

    @property
    def size(self) -> int:
        """Bytes in the archive."""
        return len(self.archive)

    def manifest_signed(self) -> dict[str, Any]:
        """The ``signed`` part of the release manifest."""
        return {
            "type": "release",
            "product": self.product,
            "version": self.version,
            "kind": self.kind,
            "severity": self.severity,
            "channel": "stable",
            "line": self.line or f"{Version(self.version).major}.x",
            "published_at": iso(self.published_at),
            "min_from": self.min_from,
            "notes_sha256": hashlib.sha256(b"").hexdigest(),
            "customers": [],
            "artifacts": {
                self.platform: {"filename": self.filename, "size": self.size, "sha256": self.sha256}
            },
        }


DEADLINES = {"critical": 8, "serious": 24, "minor": 72}


@dataclass
class Seen:
    """A request the sim received."""

    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


class AgentSim:
    """The fake server. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, product: str = "acme-erp", license_key: str = "vgl_sim_license") -> None:
        self.product = product
        self.license_key = license_key
        self.root_key, self.release_key, self.check_key = Key(), Key(), Key()
        self.root_keys = [self.root_key]
        self.roots: list[dict[str, Any]] = []
        self.releases: dict[str, Release] = {}
        self.faults: set[str] = set()
        self.retry_after = 120
        self.drop_after = 64 * 1024
        self.force_offer: str | None = None
        self.check_hook: Callable[[dict[str, Any]], None] | None = None
        self.document_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.manifest_keys: list[Key] | None = None  # who signs manifests (None: release key)
        self.entitlement: dict[str, Any] = {
            "status": "active",
            "maintenance_ends_on": "2099-12-31",
            "renewal_url": "https://vendor.example/renew?customer=sim",
            "message": "Maintenance active until 2099-12-31.",
        }
        self.cutoff: datetime | None = None  # releases published later are not entitled
        self.notices: list[dict[str, Any]] = []
        self.seen: list[Seen] = []
        self.reports: list[dict[str, Any]] = []
        self.tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()
        self.stopped = False
        self.check_role = True
        self.add_root(expires=now() + timedelta(days=365))
        self.servers = [self._server("127.0.0.1"), self._server("localhost")]
        self.url = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.storage_url = f"http://localhost:{self.servers[1].server_address[1]}"

    # ------------------------------------------------------------------ lifecycle

    def _server(self, name: str) -> ThreadingHTTPServer:
        sim = self

        class Handler(_Handler):
            owner = sim
            host_name = name

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        return server

    def start(self) -> AgentSim:
        """Serve in background threads."""
        for server in self.servers:
            # A short poll: shutdown() waits up to one interval, and every test stops a sim.
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets (again: nothing happens)."""
        if self.stopped:
            return
        self.stopped = True
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> AgentSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ trust

    def add_root(
        self,
        *,
        expires: datetime,
        new_root_key: bool = False,
        new_online_keys: bool = False,
        signed_by_previous: bool = True,
        check_role: bool = True,
    ) -> dict[str, Any]:
        """Publish root N+1 (N = 0 makes the first). Rotation signs with the old and new keys."""
        previous = list(self.root_keys)
        if new_root_key:
            self.root_keys = [Key()]
        if new_online_keys:
            self.release_key, self.check_key = Key(), Key()
        signed = root_signed(
            len(self.roots) + 1,
            expires,
            self.root_keys,
            [self.release_key],
            [self.check_key] if check_role else None,
        )
        signers = [*self.root_keys]
        if self.roots and signed_by_previous:
            signers += [k for k in previous if k not in signers]
        document = sign(signed, signers)
        self.roots.append(document)
        self.check_role = check_role
        return document

    def write_root(self, path: Path, version: int = 1) -> Path:
        """Write root ``version`` (the one an application ships) to ``path``."""
        path.write_text(json.dumps(self.roots[version - 1]))
        return path

    # ------------------------------------------------------------------ releases

    def publish(
        self,
        version: str,
        files: dict[str, bytes | str] | None = None,
        *,
        archive: bytes | None = None,
        filename: str | None = None,
        **facts: Any,
    ) -> Release:
        """Publish ``version`` from ``files`` (default: the runnable app) or a ready archive."""
        if archive is None:
            archive = tar_gz(files if files is not None else app_files(version))
        suffix = ".zip" if archive[:2] == b"PK" else ".tar.gz"
        release = Release(
            version,
            archive,
            filename or f"{self.product}-{version}{suffix}",
            product=facts.pop("product", self.product),
            **facts,
        )
        release.manifest = sign(release.manifest_signed(), self.manifest_keys or [self.release_key])
        self.releases[version] = release
        return release

    def lapse(self, cutoff: datetime, status: str = "lapsed") -> None:
        """Maintenance ended at ``cutoff``: later releases are not entitled; the prompt says so."""
        self.cutoff = cutoff
        self.entitlement = {
            "status": status,
            "maintenance_ends_on": cutoff.date().isoformat(),
            "cutoff": iso(cutoff),
            "renewal_url": "https://vendor.example/renew?customer=sim",
            "message": f"Maintenance ended on {cutoff.date().isoformat()}.",
        }

    # ------------------------------------------------------------------ what the agent saw

    def requests(self, prefix: str, host: str | None = None) -> list[Seen]:
        """Requests whose path starts with ``prefix`` (on one host name, if given)."""
        return [s for s in self.seen if s.path.startswith(prefix) and host in (None, s.host)]

    # ------------------------------------------------------------------ the check

    def _entitled(self, release: Release) -> bool:
        return self.cutoff is None or release.published_at <= self.cutoff

    def _newer(self, installed: Version, platform: str) -> list[Release]:
        return sorted(
            (
                r
                for r in self.releases.values()
                if not r.yanked
                and r.product == self.product
                and r.platform in (platform, "any")
                and Version(r.version) > installed
            ),
            key=lambda r: Version(r.version),
        )

    def check_response(self, request: dict[str, Any]) -> dict[str, Any]:
        """The signed answer to a check request (faults applied)."""
        issued = now()
        installed = Version(request["version"])
        newer = self._newer(installed, request["platform"])
        entitled = [r for r in newer if self._entitled(r)]
        offer = self.releases[self.force_offer] if self.force_offer else (entitled or [None])[-1]
        signed: dict[str, Any] = {
            "type": "check",
            "nonce": secrets.token_hex(16) if "wrong-nonce" in self.faults else request["nonce"],
            "installation_id": "inst-somebody-else-0000"
            if "wrong-installation" in self.faults
            else request["installation_id"],
            "product": self.product,
            "platform": request["platform"],
            "channel": request["channel"],
            "installed_version": request["version"],
            "license_fingerprint": hashlib.sha256(self.license_key.encode()).hexdigest(),
            "issued_at": iso(
                issued - timedelta(hours=2) if "expired-check" in self.faults else issued
            ),
            "expires_at": iso(
                issued + timedelta(hours=-1 if "expired-check" in self.faults else 1)
            ),
            "entitlement": {**self.entitlement, "cutoff": iso(self.cutoff or issued)},
            "update": self._offer(offer, issued) if offer else None,
            "renewal": self._renewal(newer),
            "notices": [*self.notices, *self._yanked_notice(request["version"], entitled)],
        }
        if self.check_hook is not None:
            self.check_hook(signed)
        # A root without a check role means the release key signs check responses.
        document = sign(signed, [self.check_key if self.check_role else self.release_key])
        if "bad-signature" in self.faults:
            sig = document["signatures"][0]["sig"]
            document["signatures"][0]["sig"] = ("0" if sig[0] != "0" else "1") + sig[1:]
        if "no-signature" in self.faults:
            document["signatures"] = []
        if "unknown-key" in self.faults:
            document = sign(signed, [Key()])
        if self.document_hook is not None:
            document = self.document_hook(document)
        return document

    def _offer(self, release: Release, issued: datetime) -> dict[str, Any]:
        token = secrets.token_hex(12)
        expires = issued + timedelta(minutes=15)
        if "expire-first-link" in self.faults:
            self.faults.discard("expire-first-link")
            expires = issued - timedelta(minutes=1)
        self.tokens[token] = (release.version, expires)
        url = f"{self.url}/api/v1/download/{token}"
        if "file-url" in self.faults:
            url = "file:///etc/passwd"
        apply_by = None
        if release.severity in DEADLINES:
            apply_by = max(
                release.published_at + timedelta(hours=DEADLINES[release.severity]), issued
            )
        return {
            "version": release.version,
            "kind": release.kind,
            "severity": release.severity,
            "manifest": release.manifest,
            "download": {
                "url": url,
                "expires_at": iso(expires),
                "size": release.size,
                "sha256": release.sha256,
            },
            "apply_by": iso(apply_by) if apply_by else None,
        }

    def _renewal(self, newer: list[Release]) -> dict[str, Any] | None:
        missing = [r for r in newer if not self._entitled(r)]
        if not missing:
            return None
        counts = {k: sum(r.kind == k for r in missing) for k in ("update", "security", "version")}
        return {
            "newest_version": missing[-1].version,
            "updates": counts["update"],
            "security": counts["security"],
            "versions": counts["version"],
            "renewal_url": self.entitlement["renewal_url"],
            "message": f"Renew maintenance to receive {len(missing)} releases, including "
            f"{counts['security']} security revision(s).",
        }

    def _yanked_notice(self, installed: str, entitled: list[Release]) -> list[dict[str, Any]]:
        release = self.releases.get(installed)
        if release is None or not release.yanked:
            return []
        recommended = entitled[-1].version if entitled else None
        return [
            {
                "code": "yanked",
                "message": f"{installed} was withdrawn by the vendor.",
                "reason": release.yanked,
                "recommended_version": recommended,
            }
        ]

    # ------------------------------------------------------------------ downloads

    def blob(self, token: str) -> tuple[Release | None, bool]:
        """The release a download token names, and whether the token has expired."""
        version, expires = self.tokens.get(token, ("", now()))
        return self.releases.get(version), expires < now()


class _Handler(BaseHTTPRequestHandler):
    owner: AgentSim
    host_name: str

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the test asserts on `sim.seen`

    def _record(self, body: Any = None) -> None:
        with self.owner._lock:
            self.owner.seen.append(
                Seen(self.host_name, self.command, self.path, dict(self.headers.items()), body)
            )

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, **headers: str) -> None:
        self._json(status, {"error": {"code": code, "message": message}}, headers)

    def do_GET(self) -> None:
        self._record()
        sim = self.owner
        try:
            if self.host_name == "localhost" and self.path.startswith("/blob/"):
                release = sim.releases.get(self.path.removeprefix("/blob/"))
                if release is None:
                    self._error(404, "not_found", "no such blob")
                else:
                    self._serve(release)
            elif self.path == "/api/v1/root.json":
                self._json(200, sim.roots[-1])
            elif match := re.fullmatch(r"/api/v1/root/(\d+)\.json", self.path):
                number = int(match.group(1))
                if 1 <= number <= len(sim.roots):
                    self._json(200, sim.roots[number - 1])
                else:
                    self._error(404, "not_found", f"no root version {number}")
            elif self.path.startswith("/api/v1/download/"):
                self._download(self.path.removeprefix("/api/v1/download/"))
            else:
                self._error(404, "not_found", "no such endpoint")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent hung up, as it does when it refuses a body

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        self._record(body)
        sim = self.owner
        if self.headers.get("Authorization") != f"License {sim.license_key}":
            self._error(401, "license_unknown", "no such license")
        elif "revoked" in sim.faults:
            self._error(403, "license_revoked", "this license was revoked on 2026-01-01")
        elif self.path == "/api/v1/report":
            if "report-500" in sim.faults:
                self._error(500, "internal", "reports are down")
            else:
                sim.reports.append(body)
                self._json(202, {"recorded": True})
        elif self.path == "/api/v1/check":
            self._check(body)
        else:
            self._error(404, "not_found", "no such endpoint")

    def _check(self, body: Any) -> None:
        sim = self.owner
        if "429" in sim.faults:
            self._error(429, "rate_limited", "slow down", **{"Retry-After": str(sim.retry_after)})
        elif "check-500" in sim.faults:
            self._error(500, "internal", "the database is down")
        elif "not-json" in sim.faults:
            data = b"<html>proxy login</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif "huge" in sim.faults:
            self._json(200, {"padding": "x" * (5 * 1024 * 1024)})
        else:
            self._json(200, sim.check_response(body))

    def _download(self, token: str) -> None:
        sim = self.owner
        release, expired = sim.blob(token)
        if release is None:
            self._error(404, "not_found", "no such download")
        elif expired:
            self._error(410, "download_expired", "this download link has expired")
        elif "redirect" in sim.faults:
            self.send_response(302)
            self.send_header("Location", f"{sim.storage_url}/blob/{release.version}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._serve(release)

    def _serve(self, release: Release) -> None:
        sim = self.owner
        data, etag = release.archive, f'"{release.sha256}"'
        if "flip-byte" in sim.faults:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
        if "truncate" in sim.faults:
            data = data[: len(data) // 2]
        start, status = 0, 200
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if wanted and "ignore-range" not in sim.faults and if_range in (None, etag):
            start, status = int(wanted.group(1)), 206
            if start >= len(data):
                self._error(416, "range", "range not satisfiable")
                return
        body = data[start:]
        headers = {"Accept-Ranges": "bytes", "ETag": etag}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if "gzip" in sim.faults:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if "endless" in sim.faults:
            self._endless(status, headers, body)
            return
        announced = len(body) + (4096 if "announce-more" in sim.faults else 0)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(announced)}.items():
            self.send_header(name, value)
        self.end_headers()
        if "drop-once" in sim.faults:
            sim.faults.discard("drop-once")
            self.wfile.write(body[: sim.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _endless(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        for _ in range(64):  # 64 MiB past the manifest's size, then give up
            self.wfile.write(b"\0" * (1024 * 1024))


# --------------------------------------------------------------------------- installations


@dataclass
class Result:
    """What one run of the agent's CLI did."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (``--json``)."""
        return json.loads(self.stdout)


@dataclass
class Installation:
    """An application installed from one of the sim's releases, with its agent.toml."""

    base: Path
    sim: AgentSim

    @property
    def config(self) -> Path:
        """The agent.toml."""
        return self.base / "agent.toml"

    @property
    def app(self) -> Path:
        """The install directory."""
        return self.base / "app"

    @property
    def state(self) -> Path:
        """The agent's state directory."""
        return self.base / "state"

    @property
    def current(self) -> Path:
        """The ``current`` symlink."""
        return self.app / "current"

    def current_version(self) -> str | None:
        """Where ``current`` points, or None."""
        try:
            return Path(os.readlink(self.current)).name
        except OSError:
            return None

    def runs(self) -> str:
        """What the installed application prints: proof that it is complete and runnable."""
        out = subprocess.run(
            [str(self.current / "bin" / "app"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            cwd=self.current,
            timeout=10,
        )
        return out.stdout.strip()

    def leftovers(self) -> list[str]:
        """Half-done things a crash may leave: staging, trash, a temporary link, the journal."""
        found = [p.name for p in self.app.glob(".current-*")]
        if (self.app / "versions").is_dir():
            found += [p.name for p in (self.app / "versions").glob(".*")]
        if (self.state / "apply-journal.json").exists():
            found.append("apply-journal.json")
        return found

    def cli(self, *args: str) -> Result:
        """Run ``vigor-agent --config agent.toml ARGS`` in this process."""
        from client_agent.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(["--config", str(self.config), *args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return Result(code, out.getvalue(), err.getvalue())

    def subprocess(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run the agent as a real process (``python -m client_agent``)."""
        done = subprocess.run(
            [sys.executable, "-m", "client_agent", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "NO_PROXY": "127.0.0.1,localhost", **(env or {})},
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


def install_version(app: Path, archive: bytes, version: str) -> None:
    """What an installer does: unpack a version and point ``current`` at it."""
    target = app / "versions" / version
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="tar")
    (app / "current").symlink_to(Path("versions") / version)


def make_installation(
    base: Path,
    sim: AgentSim,
    version: str | None = "1.0.0",
    *,
    health_check: str = '["bin/app", "--version"]',
    extra: str = "",
    limits: str = "",
) -> Installation:
    """An installation of the sim's ``version`` (None: nothing installed) in ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    if version is not None:
        install_version(base / "app", sim.releases[version].archive, version)
    sim.write_root(base / "root.json")
    (base / "agent.toml").write_text(
        f'server_url = "{sim.url}"\n'
        f'license_key = "{sim.license_key}"\n'
        f'product = "{sim.product}"\n'
        'platform = "linux-x86_64"\n'
        'install_dir = "app"\n'
        'state_dir = "state"\n'
        'trusted_root = "root.json"\n'
        f"health_check = {health_check}\n"
        f"{extra}"
        "[limits]\n"
        "network_timeout = 5\n"
        "download_attempts = 3\n"
        "first_backoff_seconds = 0.01\n"
        f"{limits}"
    )
    return Installation(base, sim)


@contextlib.contextmanager
def running_sim(*versions: str) -> Iterator[AgentSim]:
    """A started sim with the runnable app published at ``versions``."""
    with AgentSim() as sim:
        for version in versions:
            sim.publish(version)
        yield sim
