"""Baseline for bench/upload.py: a bare WSGI app that streams a request body to a file.

The ceiling an upload can reach on this machine through the same gunicorn: socket → Python →
disk, with no parsing, hashing or database. With ``RAW_UPLOAD_HASH=1`` it also computes the
SHA-256 of what it writes, in the same loop: the least any store that names its blobs by digest
(as Vigor's does) must add.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

TARGET_DIR = os.environ.get("RAW_UPLOAD_DIR", tempfile.gettempdir())
HASH = os.environ.get("RAW_UPLOAD_HASH") == "1"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/readyz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    fd, path = tempfile.mkstemp(dir=TARGET_DIR)
    digest = hashlib.sha256() if HASH else None
    with os.fdopen(fd, "wb") as out:
        while remaining > 0:
            chunk = stream.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            if digest is not None:
                digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    os.unlink(path)
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"stored"]
