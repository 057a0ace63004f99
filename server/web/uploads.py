"""Streamed multipart uploads: file parts go straight into the artifact store while parsing.

Werkzeug's form parser asks a ``stream_factory`` for somewhere to write each file part; handing
it a store writer means the bytes are hashed and stored in one pass, with memory bounded by the
parser's buffer, and nothing is visible until the publish commits.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser
from werkzeug.wsgi import get_input_stream

from server.storage.background import BackgroundWriter
from server.storage.base import ArtifactStore, BlobWriter, StoredBlob

# A release has a handful of platforms; more file parts than this is abuse, not a release.
MAX_FILE_PARTS = 16

# Text fields (notes, customers) larger than this are refused, and forms of more parts than
# this (fields and files together): together they bound the memory a form's fields can take.
MAX_FIELD_BYTES = 1024 * 1024
MAX_FORM_PARTS = 128

# How much of the body the parser asks for at a time. Werkzeug's default (64 KiB) made
# gunicorn, which receives up to 1 MiB at once, copy what it kept back on every read: profiled,
# that was the largest cost of a publish. Werkzeug refuses a read that, with what its decoder
# still holds, exceeds MAX_FIELD_BYTES, so this stays well below it.
READ_SIZE = MAX_FIELD_BYTES // 2


class _WriterFile:
    """The file object the parser writes a part into."""

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer

    def write(self, data: bytes) -> int:
        return self.writer.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        # The parser rewinds a finished part; the bytes are already on their way to the store.
        return 0

    def read(self, size: int = -1) -> bytes:  # pragma: no cover - never read back
        return b""


class StreamedForm:
    """The parsed form; ``writers`` maps each file field to its store writer."""

    def __init__(
        self,
        form: MultiDict[str, str],
        files: MultiDict[str, FileStorage],
        writers: list[BackgroundWriter],
    ) -> None:
        self.form = form
        self.files = files
        self.writers = writers

    def writer_for(self, storage: FileStorage) -> BlobWriter:
        stream: Any = storage.stream
        writer: BlobWriter = stream.writer
        return writer

    def abort(self) -> None:
        for writer in self.writers:
            writer.abort()


def parse_streamed(request: Request, store: ArtifactStore, max_file_size: int) -> StreamedForm:
    """Parse ``request``'s multipart body, streaming each file part into ``store``.

    On any parse failure (client disconnect, too large) every writer is aborted and the error
    propagates; the caller aborts the writers itself if it refuses the form afterwards.
    """
    writers: list[BackgroundWriter] = []

    def stream_factory(
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        if len(writers) >= MAX_FILE_PARTS:
            raise RequestEntityTooLarge(f"at most {MAX_FILE_PARTS} files per release")
        writer = BackgroundWriter(store.writer(max_size=max_file_size))
        writers.append(writer)
        return _WriterFile(writer)  # type: ignore[return-value]

    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    # Not ``request.stream``: with a maximum set, werkzeug wraps the body in a LimitedStream
    # that copies every chunk twice. The maximum is checked above; a body from a server that
    # ends it itself (gunicorn sets ``wsgi.input_terminated``) is read directly, and one
    # without a Content-Length is bounded by the limits per file, per field and on parts.
    stream = get_input_stream(request.environ, max_content_length=None)
    parser = MultiPartParser(
        stream_factory=stream_factory,
        max_form_memory_size=MAX_FIELD_BYTES,
        buffer_size=READ_SIZE,
        max_form_parts=MAX_FORM_PARTS,
    )
    try:
        boundary = request.mimetype_params.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("the multipart body has no boundary")
        form, files = parser.parse(stream, boundary, request.content_length)
        for writer in writers:
            writer.flush()  # a size limit or store failure is raised here, not at commit
    except (ValueError, OSError) as exc:
        # A truncated body (the client went away) or malformed multipart framing.
        for writer in writers:
            writer.abort()
        raise BadRequest("the upload was incomplete or its multipart body is malformed") from exc
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return StreamedForm(form, files, writers)


# A raw upload's body is read this much at a time: what gunicorn receives at once at most.
RAW_READ_SIZE = 1024 * 1024


def receive_body(
    request: Request,
    store: ArtifactStore,
    length: int,
    max_size: int,
    expected_sha256: str | None = None,
) -> StoredBlob:
    """Stream ``request``'s body (``length`` bytes, its Content-Length) into ``store`` and commit it.

    No parsing: each chunk read goes to a :class:`BackgroundWriter`, which hashes and writes it
    while the next one is received. A body cut short (the client went away) is a ``BadRequest``;
    bytes whose digest is not ``expected_sha256`` raise ``DigestMismatchError``. On any failure
    nothing is stored.
    """
    # As in parse_streamed: not ``request.stream`` (a LimitedStream copying every chunk); the
    # caller has checked the length against the maximum, and only ``length`` bytes are read.
    stream = get_input_stream(request.environ, max_content_length=None)
    writer = BackgroundWriter(store.writer(max_size=max_size, expected_sha256=expected_sha256))
    try:
        remaining = length
        while remaining > 0:
            try:
                chunk = stream.read(min(remaining, RAW_READ_SIZE))
            except OSError as exc:
                raise BadRequest("the upload was cut off before its end") from exc
            if not chunk:
                raise BadRequest(
                    f"the upload was cut off: {length - remaining} of {length} bytes arrived"
                )
            writer.write(chunk)
            remaining -= len(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
