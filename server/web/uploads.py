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
from werkzeug.formparser import FormDataParser

from server.storage.base import ArtifactStore, BlobWriter

# A release has a handful of platforms; more file parts than this is abuse, not a release.
MAX_FILE_PARTS = 16


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
        writers: list[BlobWriter],
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
    writers: list[BlobWriter] = []

    def stream_factory(
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        if len(writers) >= MAX_FILE_PARTS:
            raise RequestEntityTooLarge(f"at most {MAX_FILE_PARTS} files per release")
        writer = store.writer(max_size=max_file_size)
        writers.append(writer)
        return _WriterFile(writer)  # type: ignore[return-value]

    parser = FormDataParser(
        stream_factory=stream_factory,
        max_form_memory_size=1024 * 1024,
        max_content_length=request.max_content_length,
        silent=False,
    )
    try:
        _, form, files = parser.parse(
            request.stream,
            request.mimetype,
            request.content_length,
            request.mimetype_params,
        )
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
