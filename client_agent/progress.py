"""A download progress bar on stderr when it is a terminal; silence otherwise (cron, logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = [
    "human_size",
    "terminal_progress",
]


def human_size(size: int) -> str:
    """``103 KB``, ``9.5 MB``: decimal units, as download sizes are usually told."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1000**2:
        return f"{size / 1000:.0f} KB"
    if size < 1000**3:
        return f"{size / 1000**2:.1f} MB"
    return f"{size / 1000**3:.1f} GB"


def terminal_progress(total: int, stream: TextIO | None = None) -> Callable[[int], None] | None:
    """A callback drawing ``[#####     ]  42% of 12.3 MB`` on one line, or None off a TTY."""
    out = stream or sys.stderr
    if not out.isatty():
        return None
    shown = {"percent": -1, "at": 0.0}

    def show(done: int) -> None:
        percent = done * 100 // max(total, 1)
        now = time.monotonic()
        # Redraw on a new percent, at most ten times a second: a terminal is slow too.
        if percent == shown["percent"] or (now - shown["at"] < 0.1 and done < total):
            return
        shown["percent"], shown["at"] = percent, now
        bar = "#" * (percent // 4)
        out.write(f"\r  downloading [{bar:<25}] {percent:3d}% of {total / 1e6:.1f} MB")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
