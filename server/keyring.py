"""Key files: Ed25519 private keys as PKCS#8 PEM, optionally passphrase-encrypted.

Root keys are meant to live offline (a USB stick, a vault): commands that need them take a path.
Online keys (release, check) live in the instance's keys directory, named by key id, and the
server picks the ones the newest root names for each role.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from server.domain.trust import KeySigner, Root, TrustError


class KeyFileError(Exception):
    """A key file is missing, unreadable, of the wrong kind, or its passphrase is wrong."""


def is_encrypted(path: Path) -> bool:
    """Whether the key file at ``path`` is passphrase-encrypted (False if it cannot be read)."""
    try:
        return path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    except OSError:
        return False


def _private_dir(path: Path) -> None:
    """Create directory ``path`` (and missing parents) readable by its owner only."""
    if path.is_dir():
        return
    _private_dir(path.parent)
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600, in a directory it creates with mode 0700;
    never overwrite an existing key."""
    _private_dir(path.parent)
    if path.exists():
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if someone created the key meanwhile, unlike os.replace
    finally:
        tmp.unlink(missing_ok=True)


def create_key_file(path: Path, passphrase: str | None = None) -> KeySigner:
    """Create a new Ed25519 key at ``path`` and return its signer."""
    key = Ed25519PrivateKey.generate()
    encryption = BestAvailableEncryption(passphrase.encode()) if passphrase else NoEncryption()
    _write_private(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption))
    return KeySigner(key)


def load_key_file(path: Path, passphrase: str | None = None) -> KeySigner:
    """Load an Ed25519 key file; one clear ``KeyFileError`` for every way it can fail."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase:
            raise KeyFileError(f"{path} is not encrypted; do not give a passphrase") from None
        raise KeyFileError(f"{path} is encrypted; a passphrase is required") from None
    except ValueError:
        raise KeyFileError(f"{path} is not a valid key file or the passphrase is wrong") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 key")
    return KeySigner(key)


class Keyring:
    """The online keys in an instance's keys directory, found by key id."""

    def __init__(self, keys_dir: Path, passphrase: str | None = None) -> None:
        self.keys_dir = keys_dir
        self.passphrase = passphrase
        self._loaded: dict[str, KeySigner] = {}
        self._by_role: dict[tuple[int, str], KeySigner] = {}

    def path_for(self, keyid: str) -> Path:
        return self.keys_dir / f"online-{keyid}.pem"

    def create(self) -> KeySigner:
        """Create a new online key; it signs nothing until a root names it."""
        signer = KeySigner(Ed25519PrivateKey.generate())
        path = self.path_for(signer.keyid)
        encryption = (
            BestAvailableEncryption(self.passphrase.encode()) if self.passphrase else NoEncryption()
        )
        _write_private(
            path, signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
        )
        self._loaded[signer.keyid] = signer
        return signer

    def available(self) -> list[str]:
        """Key ids of every online key file present."""
        if not self.keys_dir.is_dir():
            return []
        return sorted(p.stem.removeprefix("online-") for p in self.keys_dir.glob("online-*.pem"))

    def load(self, keyid: str) -> KeySigner:
        if keyid not in self._loaded:
            signer = load_key_file(self.path_for(keyid), self.passphrase)
            if signer.keyid != keyid:
                raise KeyFileError(f"{self.path_for(keyid)} holds key {signer.keyid}, not {keyid}")
            self._loaded[keyid] = signer
        return self._loaded[keyid]

    def signer_for(self, root: Root, role: str) -> KeySigner:
        """The first online key that ``root`` names for ``role`` (remembered per root version)."""
        remembered = self._by_role.get((root.version, role))
        if remembered is not None:
            return remembered
        present = set(self.available())
        for keyid in root.role(role).keyids:
            if keyid in present:
                signer = self.load(keyid)
                self._by_role[(root.version, role)] = signer
                return signer
        raise TrustError(
            f"no key for the {role!r} role of root version {root.version} in {self.keys_dir}"
        )
