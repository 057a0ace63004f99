"""Rebuilding the offered release from a patch (client_agent/patching.py): the content is used
only when the patch's bytes are the signed ones and the rebuilt content hashes to the signed
``content_sha256``; anything else falls back to the full download and is not tried again.

Patches are made with the server's encoder; the network is a dictionary behind ``Fetcher``.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client_agent.downloads import Downloads
from client_agent.errors import DownloadError
from client_agent.install import Layout
from client_agent.patching import download_patch
from client_agent.progress import human_size
from client_agent.state import StateStore
from client_agent.verify import CheckAnswer, PatchOffer
from server.domain.delta import make_delta, uncompressed
from tests.common.factories import tar_gz

OLD = tar_gz({"bin/app": "#!/bin/sh\necho 1.0.0\n", "lib/data": "x = 1\n" * 500})
NEW = tar_gz({"bin/app": "#!/bin/sh\necho 1.1.0\n", "lib/data": "x = 1\n" * 500 + "y = 2\n"})
URL = "https://updates.example/p/1"


class Network:
    """``download`` from a dictionary of URL → bytes; records what was asked (the URL, and the
    size, SHA-256 and progress callback it was asked with)."""

    def __init__(self, files: dict[str, bytes], reported: str | None = None) -> None:
        self.files = files
        self.reported = reported  # the SHA-256 the download reports, if not the bytes' own
        self.asked: list[str] = []
        self.with_: list[tuple[int, str, Any]] = []

    def download(self, url: str, part: Path, size: int, etag: str, progress: Any, *_: Any) -> str:
        self.asked.append(url)
        self.with_.append((size, etag, progress))
        data = self.files[url][:size]
        part.write_bytes(data)
        return self.reported or hashlib.sha256(data).hexdigest()


class Unreachable(Network):
    def download(self, url: str, *args: Any) -> str:
        self.asked.append(url)
        raise DownloadError(f"cannot connect to {url}")


def content(archive: bytes, work: Path) -> tuple[Path, str, int]:
    path = work / hashlib.sha256(archive).hexdigest()
    (work / "archive").write_bytes(archive)
    with (work / "archive").open("rb") as handle:
        made = uncompressed(handle, path)
    return path, made.sha256, made.size


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """1.0.0 installed from a download the agent kept, with its manifest."""
    layout = Layout(tmp_path / "app", tmp_path / "state")
    (layout.versions / "1.0.0").mkdir(parents=True)
    layout.current.symlink_to(Path("versions") / "1.0.0")
    digest = hashlib.sha256(OLD).hexdigest()
    layout.downloads.mkdir(parents=True)
    layout.downloaded(digest).write_bytes(OLD)
    layout.manifests.mkdir(parents=True)
    manifest = {"signed": {"artifacts": {"linux-x86_64": {"sha256": digest}}}}
    layout.kept_manifest("1.0.0").write_text(json.dumps(manifest))
    return layout


def offer(work: Path, **changes: Any) -> tuple[PatchOffer, bytes]:
    old_path, old_sha, _ = content(OLD, work)
    new_path, new_sha, new_size = content(NEW, work)
    make_delta(old_path, new_path, work / "patch")
    patch = (work / "patch").read_bytes()
    fields: dict[str, Any] = {
        "url": URL,
        "size": len(patch),
        "sha256": hashlib.sha256(patch).hexdigest(),
        "from_version": "1.0.0",
        "from_content_sha256": old_sha,
        "content_sha256": new_sha,
        "content_size": new_size,
        "format": "zstd1",
    }
    return PatchOffer(**{**fields, **changes}), patch


def answer(patch: PatchOffer | None) -> CheckAnswer:
    return CheckAnswer({}, None, None, None, datetime(2026, 11, 25, tzinfo=UTC), patch)


def downloads(layout: Layout, network: Network) -> Downloads:
    return Downloads(layout, network, lambda url: {}, 0)  # type: ignore[arg-type]


def leftovers(layout: Layout) -> list[str]:
    return sorted(p.name for p in layout.downloads.iterdir() if p.name.endswith((".part", ".tmp")))


def test_a_good_patch_rebuilds_the_signed_content(
    layout: Layout, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[int] = []
    totals: list[int] = []

    def progress(total: int) -> Any:
        totals.append(total)
        return shown.append

    monkeypatch.setattr("client_agent.patching.terminal_progress", progress)
    patch, data = offer(work)
    network = Network({URL: data})
    state = StateStore(layout.state_dir)
    result = download_patch(downloads(layout, network), state, answer(patch))
    assert result is not None and result.content is not None
    built, size = result.content, result.size
    assert size == patch.size
    assert result.failure is None
    assert built.name == f"content-{patch.content_sha256}"
    # Fetched at most the signed size, for the signed SHA-256, with a progress bar that size.
    assert network.with_ == [(patch.size, patch.sha256, shown.append)]
    assert totals == [patch.size]
    assert hashlib.sha256(built.read_bytes()).hexdigest() == patch.content_sha256
    assert built.read_bytes() == (work / hashlib.sha256(NEW).hexdigest()).read_bytes()
    assert state.get("failed_patches") is None
    assert leftovers(layout) == []
    # The installed content was rebuilt once and kept for the next patch.
    kept = layout.downloads / f"content-{patch.from_content_sha256}"
    assert kept.read_bytes() == (work / hashlib.sha256(OLD).hexdigest()).read_bytes()
    os.remove(layout.downloaded(hashlib.sha256(OLD).hexdigest()))
    again = download_patch(downloads(layout, network), state, answer(patch))
    assert again is not None and again.content == built


def refused(
    layout: Layout, patch: PatchOffer, network: Network, failure: str | None = None
) -> StateStore:
    """The patch is not used; ``failure``: it was tried and failed, and the result says why."""
    state = StateStore(layout.state_dir)
    result = download_patch(downloads(layout, network), state, answer(patch))
    if failure is None:
        assert result is None, "not tried"
    else:
        assert result is not None and result.content is None
        assert result.size == patch.size
        assert result.failure is not None and failure in result.failure
    assert leftovers(layout) == []
    assert not (layout.downloads / f"content-{patch.content_sha256}").exists()
    return state


@pytest.mark.parametrize(
    ("tamper", "failure"),
    [
        pytest.param(
            lambda p, d: (p, d[:-1] + bytes([d[-1] ^ 1])),
            "does not match its signed SHA-256",
            id="patch-bytes-changed",
        ),
        pytest.param(
            lambda p, d: (p, d[:-1]), "does not match its signed SHA-256", id="patch-one-byte-short"
        ),
        pytest.param(
            lambda p, d: (PatchOffer(**{**p.__dict__, "content_sha256": "0" * 64}), d),
            "the patched content does not match its signed SHA-256",
            id="rebuilt-content-is-not-the-signed-one",
        ),
        pytest.param(
            lambda p, d: (PatchOffer(**{**p.__dict__, "content_size": p.content_size - 1}), d),
            "more than the signed size",
            id="rebuilt-content-longer-than-signed",
        ),
        pytest.param(
            lambda p, d: (PatchOffer(**{**p.__dict__, "format": "vigor1"}), d),
            "could not be applied",  # the zstd bytes are not lzma
            id="read-in-another-format",
        ),
    ],
)
def test_a_patch_that_does_not_rebuild_the_signed_content_is_refused_and_remembered(
    layout: Layout, work: Path, tamper: Any, failure: str
) -> None:
    good, data = offer(work)
    patch, served = tamper(good, data)
    network = Network({URL: served})
    state = refused(layout, patch, network, failure)
    assert state.get("failed_patches") == [patch.sha256]
    assert StateStore(layout.state_dir).get("failed_patches") == [patch.sha256], "saved"
    # Not tried again: the full download is used from now on.
    assert download_patch(downloads(layout, network), state, answer(patch)) is None
    assert network.asked == [URL]


def test_a_patch_from_other_content_than_the_installed_is_not_fetched(
    layout: Layout, work: Path
) -> None:
    patch, data = offer(work, from_content_sha256="1" * 64)
    network = Network({URL: data})
    state = refused(layout, patch, network)
    assert network.asked == []
    assert state.get("failed_patches") is None, "nothing failed: there was nothing to patch"
    assert [p.name for p in layout.downloads.iterdir() if p.name.startswith("content-")] == []


def test_no_patch_offered_or_nothing_installed_means_the_full_download(
    layout: Layout, work: Path
) -> None:
    network = Network({})
    assert (
        download_patch(downloads(layout, network), StateStore(layout.state_dir), answer(None))
        is None
    )
    patch, data = offer(work)
    layout.current.unlink()
    network.files[URL] = data
    refused(layout, patch, network)
    assert network.asked == []


def test_a_kept_artifact_that_is_not_an_archive_is_skipped(layout: Layout, work: Path) -> None:
    patch, data = offer(work)
    layout.downloaded(hashlib.sha256(OLD).hexdigest()).write_bytes(b"not a gzip file")
    network = Network({URL: data})
    refused(layout, patch, network)
    assert network.asked == []


def test_bytes_the_download_reports_another_hash_for_are_refused(
    layout: Layout, work: Path
) -> None:
    patch, data = offer(work)
    state = refused(
        layout, patch, Network({URL: data}, reported="0" * 64), "does not match its signed SHA-256"
    )
    assert state.get("failed_patches") == [patch.sha256]


def test_a_patch_that_cannot_be_fetched_falls_back_to_the_full_download(
    layout: Layout, work: Path
) -> None:
    patch, _ = offer(work)
    network = Unreachable({})
    refused(layout, patch, network, "cannot connect to")
    assert network.asked == [URL]


def test_every_kept_artifact_of_the_installed_version_is_tried(layout: Layout, work: Path) -> None:
    # The kept manifest names a platform's artifact that is gone, then one that is kept.
    digest = hashlib.sha256(OLD).hexdigest()
    gone = {"sha256": "a" * 64}
    manifest = {"signed": {"artifacts": {"any": gone, "linux-x86_64": {"sha256": digest}}}}
    layout.kept_manifest("1.0.0").write_text(json.dumps(manifest))
    patch, data = offer(work)
    assert download_patch(
        downloads(layout, Network({URL: data})), StateStore(layout.state_dir), answer(patch)
    )


def test_a_kept_artifact_that_cannot_be_read_is_skipped(layout: Layout, work: Path) -> None:
    patch, data = offer(work)
    source = layout.downloaded(hashlib.sha256(OLD).hexdigest())
    source.unlink()
    source.mkdir()  # unreadable as a file: no content, and no temporary file to clean up
    network = Network({URL: data})
    refused(layout, patch, network)
    assert network.asked == []


@pytest.mark.parametrize(
    ("size", "told"),
    [
        (999, "999 bytes"),
        (1000, "1 KB"),
        (102_960, "103 KB"),
        (999_499, "999 KB"),
        (9_540_977, "9.5 MB"),
        (2_000_000_000, "2.0 GB"),
    ],
)
def test_sizes_are_told_in_decimal_units(size: int, told: str) -> None:
    assert human_size(size) == told
