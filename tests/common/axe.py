"""axe-core in a Playwright page: :func:`axe_check` fails on serious and critical violations;
:func:`no_sideways_scroll` on a page wider than its window.

axe-core comes from the npm registry (``make axe`` puts ``axe.min.js`` under ``.cache/``; the
version is the Makefile's ``AXE_VERSION``). It is evaluated in the page through the DevTools
protocol, which the pages' Content-Security-Policy does not apply to.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.common.live import ROOT

BLOCKING = ("serious", "critical")


@functools.cache
def axe_source() -> str:
    version = re.search(r"^AXE_VERSION\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert version, "the Makefile names the axe-core version"
    path: Path = ROOT / ".cache" / f"axe-core-{version.group(1)}" / "axe.min.js"
    assert path.is_file(), f"axe-core {version.group(1)} is missing: run `make axe`"
    return path.read_text()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every violation axe finds in the page as it is now, with up to five offending nodes."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
            v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))"""
    )
    return found


def axe_check(page: Page, what: str = "") -> None:
    """Fail, listing them, on serious or critical violations in ``page``."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    listing = "\n".join(f"  {v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in blocking)
    assert not blocking, f"axe-core on {what or page.url}:\n{listing}"


def no_sideways_scroll(page: Page, what: str = "") -> None:
    """The page is no wider than the window: nothing to scroll sideways to."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{what or page.url} scrolls sideways by {overflow}px"
