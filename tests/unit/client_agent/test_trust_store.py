"""The root chain on disk (client_agent/trust.py): walking to newer roots, storing each before it
is trusted, re-checking what is stored, and refusing an expired or endless chain.

The server is a dictionary of root documents behind the ``Fetcher`` seam; documents are made by
tests/common/agent_sim.py, which shares no code with the agent.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from client_agent.errors import ConfigError, ExpiredRootError, SignatureError, VerificationError
from client_agent.fetch import JsonReply
from client_agent.trust import TrustStore
from tests.common.agent_sim import Key, root_signed, sign

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
FAR = NOW + timedelta(days=365)
ROOT, NEW_ROOT, RELEASE, CHECK = Key(), Key(), Key(), Key()
URL = "https://updates.example"


def root(version: int, signers: list[Key], root_keys: list[Key], expires: datetime = FAR) -> Any:
    return sign(root_signed(version, expires, root_keys, [RELEASE], [CHECK]), signers)


class Server:
    """``GET /api/v1/root/<n>.json`` from a dictionary; None (a 404) past the newest."""

    def __init__(self, roots: dict[int, Any]) -> None:
        self.roots = roots
        self.asked: list[tuple[str, int]] = []

    def get_json(self, url: str, max_bytes: int) -> JsonReply | None:
        self.asked.append((url, max_bytes))
        match = re.fullmatch(re.escape(URL) + r"/api/v1/root/(\d+)\.json", url)
        assert match, url
        document = self.roots.get(int(match.group(1)))
        return None if document is None else JsonReply(200, document)


def store(tmp_path: Path, shipped: Any = None) -> TrustStore:
    path = tmp_path / "root.json"
    path.write_text(json.dumps(shipped if shipped is not None else root(1, [ROOT], [ROOT])))
    return TrustStore(path, tmp_path / "state" / "root", URL)


def stored(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "state" / "root").iterdir())


def test_walks_every_newer_root_and_stores_each(tmp_path: Path) -> None:
    trust = store(tmp_path)
    server = Server({2: root(2, [ROOT, NEW_ROOT], [NEW_ROOT]), 3: root(3, [NEW_ROOT], [NEW_ROOT])})
    newest = trust.refresh(server, NOW, max_walk=5, max_bytes=1000)  # type: ignore[arg-type]
    assert newest.version == 3
    assert newest.role("root").keyids == {NEW_ROOT.keyid}
    assert server.asked == [(f"{URL}/api/v1/root/{n}.json", 1000) for n in (2, 3, 4)]
    assert stored(tmp_path) == ["1.json", "2.json", "3.json"]
    assert json.loads((tmp_path / "state" / "root" / "3.json").read_text()) == server.roots[3]
    # What was stored is trusted next time without the network.
    assert store(tmp_path).load().version == 3


def test_without_a_newer_root_the_shipped_one_is_stored_and_trusted(tmp_path: Path) -> None:
    trust = store(tmp_path)
    assert trust.refresh(Server({}), NOW, max_walk=5, max_bytes=1000).version == 1  # type: ignore[arg-type]
    assert stored(tmp_path) == ["1.json"]


def test_a_root_that_does_not_verify_is_neither_stored_nor_trusted(tmp_path: Path) -> None:
    trust = store(tmp_path)
    forged = Server({2: root(2, [NEW_ROOT], [NEW_ROOT])})
    with pytest.raises(SignatureError, match="not signed by the keys of root 1"):
        trust.refresh(forged, NOW, max_walk=5, max_bytes=1000)  # type: ignore[arg-type]
    assert stored(tmp_path) == ["1.json"]
    assert trust.load().version == 1


def test_a_root_changed_on_disk_is_refused_with_what_to_do(tmp_path: Path) -> None:
    trust = store(tmp_path)
    trust.refresh(Server({2: root(2, [ROOT], [ROOT])}), NOW, 5, 1000)  # type: ignore[arg-type]
    (tmp_path / "state" / "root" / "2.json").write_text(json.dumps(root(2, [NEW_ROOT], [ROOT])))
    with pytest.raises(VerificationError, match="changed on disk: remove it"):
        trust.load()
    (tmp_path / "state" / "root" / "2.json").write_text("{not json")
    with pytest.raises(VerificationError, match="changed on disk"):
        trust.load()


def test_more_new_roots_than_allowed_are_refused(tmp_path: Path) -> None:
    endless = Server({n: root(n, [ROOT], [ROOT]) for n in range(2, 6)})
    with pytest.raises(VerificationError, match="more than 3 new roots"):
        store(tmp_path).refresh(endless, NOW, max_walk=3, max_bytes=1000)  # type: ignore[arg-type]
    # Exactly as many as allowed, then a 404: accepted.
    assert store(tmp_path).refresh(endless, NOW, max_walk=5, max_bytes=1000).version == 5  # type: ignore[arg-type]


def test_the_newest_root_must_not_have_expired(tmp_path: Path) -> None:
    lapsed = Server({2: root(2, [ROOT], [ROOT], expires=NOW - timedelta(days=1))})
    with pytest.raises(ExpiredRootError, match="version 2"):
        store(tmp_path).refresh(lapsed, NOW, max_walk=5, max_bytes=1000)  # type: ignore[arg-type]
    # An expired root in the middle of the chain is fine: only the newest must be current.
    renewed = Server({**lapsed.roots, 3: root(3, [ROOT], [ROOT])})
    assert store(tmp_path).refresh(renewed, NOW, 5, 1000).version == 3  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the trusted root"), ("[not json", "is not JSON")],
)
def test_an_unreadable_shipped_root_is_a_configuration_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "root.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        TrustStore(path, tmp_path / "state" / "root", URL).load()
