"""The agent's own small state in ``state_dir``, and the lock that keeps two agents apart.

``state.json`` holds the installation id (random, made on first run), the version to roll back
to, when the server asked not to be contacted before (``Retry-After``), and patches that failed.
Every write is durable and atomic (see files.write_atomic).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from client_agent.errors import BusyError, ConfigError
from client_agent.files import write_atomic

try:  # POSIX; elsewhere the lock is a no-op (the agent's symlink layout is POSIX anyway)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "StateStore",
    "exclusive",
    "new_installation_id",
    "prepare_state_dir",
]


def new_installation_id() -> str:
    """A random id: 16 random bytes, hex, with a readable prefix (protocol: 16..64 chars)."""
    return "inst-" + secrets.token_hex(16)


class StateStore:
    """``state.json`` as a dict that is saved atomically."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "state.json"
        self.data: dict[str, Any] = {}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
            except (OSError, ValueError):
                loaded = None  # unreadable: start afresh (only the id is lost, then remade)
            if isinstance(loaded, dict):
                self.data = loaded
        if not isinstance(self.data.get("installation_id"), str):
            self.data["installation_id"] = new_installation_id()
            self.save()

    @property
    def installation_id(self) -> str:
        """This installation's id, kept for its whole life."""
        value: str = self.data["installation_id"]
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """A value from the state."""
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Change a value and save (None removes it)."""
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.save()

    def save(self) -> None:
        """Write the whole state durably."""
        write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode())


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state directory and its parts, with one clear error if that is impossible."""
    try:
        for sub in ("root", "manifests", "downloads"):
            (state_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot use state_dir {state_dir}: {exc.strerror}") from None


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir/agent.lock`` so that two agents never apply at once (cron + a human).

    The kernel drops the lock when the process dies, even by ``kill -9``: no stale lock files.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(
                "another vigor-agent is working on this installation; try again later"
            ) from None
        yield
    finally:
        os.close(fd)
