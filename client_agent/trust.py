"""The root chain on disk: the shipped root, every root accepted since, and walking to newer ones.

The shipped ``root.json`` is the anchor; ``state_dir/root/<n>.json`` holds each later root the
agent accepted. Loading re-verifies the stored chain link by link from the shipped root, so a
file edited on disk is refused rather than trusted. Each newly fetched root is verified against
the previous one and persisted (write, fsync, rename, fsync the directory) before the next is
fetched; only then is the final root checked for expiry (docs/protocol.md, "Updating trust").
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from client_agent.errors import ConfigError, VerificationError
from client_agent.fetch import Fetcher
from client_agent.files import write_atomic
from client_agent.roots import TrustedRoot, check_root_fresh, trust_initial_root, verify_next_root

__all__ = [
    "TrustStore",
]


class TrustStore:
    """Roots in ``root_dir``, anchored at the shipped root file."""

    def __init__(self, shipped: Path, root_dir: Path, server_url: str) -> None:
        self.shipped = shipped
        self.root_dir = root_dir
        self.server_url = server_url

    def _read_shipped(self) -> Any:
        try:
            return json.loads(self.shipped.read_bytes())
        except OSError as exc:
            raise ConfigError(
                f"cannot read the trusted root {self.shipped}: {exc.strerror or exc}"
            ) from None
        except ValueError:
            raise ConfigError(f"the trusted root {self.shipped} is not JSON") from None

    def _persist(self, root: TrustedRoot) -> None:
        write_atomic(self.root_dir / f"{root.version}.json", json.dumps(root.document).encode())

    def load(self) -> TrustedRoot:
        """The newest root already accepted; no network."""
        root = trust_initial_root(self._read_shipped())
        if not (self.root_dir / f"{root.version}.json").exists():
            self._persist(root)
        while (path := self.root_dir / f"{root.version + 1}.json").exists():
            try:
                document = json.loads(path.read_bytes())
                root = verify_next_root(root, document)
            except (OSError, ValueError, VerificationError) as exc:
                raise VerificationError(
                    f"the stored root {path} does not verify ({exc}); it was changed on disk: "
                    f"remove it and any later root files to fetch them again"
                ) from None
        return root

    def refresh(
        self, fetcher: Fetcher, now: datetime, max_walk: int, max_bytes: int
    ) -> TrustedRoot:
        """Walk ``root/<n+1>.json`` until the server has no newer root; refuse an expired one."""
        root = self.load()
        for _ in range(max_walk):
            reply = fetcher.get_json(
                f"{self.server_url}/api/v1/root/{root.version + 1}.json", max_bytes
            )
            if reply is None:
                break
            root = verify_next_root(root, reply.body)
            self._persist(root)  # before it is trusted for anything else
        else:
            raise VerificationError(f"the server offers more than {max_walk} new roots; refusing")
        check_root_fresh(root, now)
        return root
