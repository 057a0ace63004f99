"""Patch generation reads artifacts straight from the store: an S3 body cannot seek, so the
content of a .tar.gz must be read from it without going back (the worker's patch job failed on
S3 with "File or stream is not seekable")."""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

from server.domain import delta
from server.storage.base import ArtifactStore


def test_the_content_of_a_stored_tar_gz_and_of_a_plain_file_reads_on_every_store(
    store: ArtifactStore, tmp_path: Path
) -> None:
    content = b"tar content " * 50_000
    packed = store.put_stream(io.BytesIO(gzip.compress(content)))
    plain = store.put_stream(io.BytesIO(content))
    for blob, name in ((packed, "packed"), (plain, "plain")):
        with store.open(blob.sha256) as handle:
            read = delta.uncompressed(handle, tmp_path / name)
        assert (read.size, read.sha256) == (len(content), hashlib.sha256(content).hexdigest())
        assert read.path.read_bytes() == content
