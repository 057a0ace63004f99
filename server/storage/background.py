"""A store writer that hashes and writes on a thread of its own while the caller keeps reading.

A publish reads the request body, parses it, then hashes and writes every byte; done in turn,
the hashing alone made a publish a third slower than a raw upload. ``hashlib`` and file writes
release the GIL, so handing each chunk to a second thread lets the request thread receive and
parse the next chunk meanwhile. Memory stays bounded: at most ``depth`` chunks wait in between.
"""

from __future__ import annotations

import queue
import threading

from server.storage.base import BlobWriter, StorageError, StoredBlob

_END = None  # the sentinel that tells the thread no more chunks come


class BackgroundWriter:
    """Wraps a ``BlobWriter``; ``write`` queues the chunk, a thread feeds it to the wrapped one.

    An error the wrapped writer raises (``SizeLimitError``, ``StorageError``) is raised again by
    the next ``write``, ``flush`` or ``commit``. Chunks must not be changed after ``write``
    (``bytes`` cannot be).

    Args:
        writer: the store's writer; only the thread touches it until ``flush``, ``commit`` or
            ``abort`` has stopped the thread.
        depth: how many chunks may wait for the thread before ``write`` blocks.
    """

    def __init__(self, writer: BlobWriter, depth: int = 16) -> None:
        self.writer = writer
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, name="store-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not _END:
            if self._error is None:  # after a failure, keep draining so no put() blocks
                try:
                    self.writer.write(chunk)
                except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _stop(self) -> None:
        if self._thread is not None:
            self._chunks.put(_END)
            self._thread.join()
            self._thread = None

    def write(self, data: bytes) -> int:
        self._raise_error()
        if self._thread is None:
            raise StorageError("write after flush, commit or abort")
        if data:
            self._chunks.put(bytes(data))  # a no-op for bytes; a copy of anything mutable
        return len(data)

    def flush(self) -> None:
        """Wait until the wrapped writer has every chunk; raise what it raised, if anything."""
        self._stop()
        self._raise_error()

    def commit(self) -> StoredBlob:
        self.flush()
        return self.writer.commit()

    def abort(self) -> None:
        self._stop()
        self.writer.abort()
