"""The vendor's brand in the portal: its name, logo, colour and support contact.

Pure checks for what a vendor configures, so that a brand can never make the portal unreadable
or unsafe: the colour is a hex CSS colour dark enough for white text on it and for links on
white (WCAG AA, a contrast of 4.5:1), the logo and support links are web URLs (or, for the logo,
a path on this site), the support address looks like one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.domain.vocabulary import is_web_url

DEFAULT_VENDOR_NAME = "Vigor"
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text
MAX_NAME_LENGTH = 80
_HEX_COLOUR = re.compile(r"\A#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_EMAIL = re.compile(r"\A[^@\s<>\"'`]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}\Z")
_SITE_PATH = re.compile(r"\A/(?!/)[A-Za-z0-9._~/%-]{0,490}\Z")
_HOST = re.compile(r"\A[A-Za-z0-9.-]{1,253}\Z")  # the logo's host goes into the pages' policy


def _logo_ok(url: str) -> bool:
    if _SITE_PATH.match(url):
        return True
    if not is_web_url(url):
        return False
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(_HOST.match(parts.hostname or "")) and "@" not in parts.netloc


@dataclass(frozen=True)
class Branding:
    """What the portal shows of the vendor. Empty strings: not configured."""

    vendor_name: str = DEFAULT_VENDOR_NAME
    logo_url: str = ""
    colour: str = ""  # "#1f5fbf"; empty: the stylesheet's own
    support_email: str = ""
    support_url: str = ""

    @property
    def has_support(self) -> bool:
        return bool(self.support_email or self.support_url)


def normalized_colour(text: str) -> str:
    """``#abc`` or ``#aabbcc`` as lower-case ``#aabbcc``.

    Raises:
        ValueError: not a hex CSS colour.
    """
    if not _HEX_COLOUR.match(text):
        raise ValueError(f"must be a hex colour such as #1f5fbf, not {text!r}")
    digits = text[1:].lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return f"#{digits}"


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    a, b = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def brand_problems(branding: Branding) -> list[tuple[str, str]]:
    """(field, what is wrong) for every setting of ``branding`` the portal cannot use."""
    problems = []
    if not branding.vendor_name.strip() or len(branding.vendor_name) > MAX_NAME_LENGTH:
        problems.append(("vendor_name", f"must be 1 to {MAX_NAME_LENGTH} characters"))
    if branding.colour:
        try:
            colour = normalized_colour(branding.colour)
        except ValueError as exc:
            problems.append(("colour", str(exc)))
        else:
            ratio = contrast_ratio(colour, "#ffffff")
            if ratio < MIN_CONTRAST:
                problems.append(
                    (
                        "colour",
                        f"{branding.colour} on white has a contrast of {ratio:.1f}:1; "
                        f"at least {MIN_CONTRAST}:1 is needed (choose a darker colour)",
                    )
                )
    if branding.logo_url and not _logo_ok(branding.logo_url):
        problems.append(("logo_url", "must be an http(s) URL or a path on this site"))
    if branding.support_url and not is_web_url(branding.support_url):
        problems.append(("support_url", "must be an http:// or https:// URL"))
    if branding.support_email and not _EMAIL.match(branding.support_email):
        problems.append(("support_email", "must be an e-mail address"))
    return problems
