"""The ``probe`` job: proves that the worker runs jobs, end to end (``vigor jobs probe``).

Its payload may name a file to wait for (``wait_for``: the job stays running until the file
appears, so an operator can watch a job in flight, or stop a worker under it) and a file to
append the job's completion to (``record``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

WAIT_LIMIT_SECONDS = 600.0


class ProbeTimeoutError(RuntimeError):
    """The file the probe waited for did not appear in time."""


def run_probe(payload: dict[str, Any]) -> None:
    """Wait for ``payload["wait_for"]`` (if given), then append a line to ``payload["record"]``.

    Raises:
        ProbeTimeoutError: the file did not appear within :data:`WAIT_LIMIT_SECONDS`.
    """
    wait_for = payload.get("wait_for")
    if wait_for:
        deadline = time.monotonic() + float(payload.get("timeout", WAIT_LIMIT_SECONDS))
        while not Path(wait_for).exists():
            if time.monotonic() > deadline:
                raise ProbeTimeoutError(f"{wait_for} did not appear")
            time.sleep(0.05)
    record = payload.get("record")
    if record:
        with Path(record).open("a", encoding="utf-8") as out:
            out.write(f"{payload.get('name', 'probe')} done\n")
