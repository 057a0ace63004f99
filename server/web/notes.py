"""Release notes: Markdown written by the vendor, shown to admins and customers as safe HTML.

CommonMark with raw HTML disabled renders the text; ``nh3`` (an allow-list sanitizer) then
cleans the result again, so a link to ``javascript:`` or an ``onerror`` attribute can never
reach a page even if the renderer's options change.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_renderer = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


@lru_cache(maxsize=256)
def render(text: str) -> Markup:
    """``text`` (Markdown) as sanitized HTML; empty for empty notes."""
    if not text.strip():
        return Markup("")
    return Markup(nh3.clean(_renderer.render(text)))  # noqa: S704 - sanitized just above
