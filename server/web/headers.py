"""Browser security headers, set in one place on every response (pages, JSON, files, errors).

The pages need nothing the policy forbids: scripts and styles are static files under
``/static/`` (no inline ``<script>``, ``<style>``, ``style=`` or ``on…=`` handlers), the charts are
SVG drawn by the server. Download and set-password links are capability URLs, so no page ever
sends its address to another site (``Referrer-Policy: same-origin``: only this site's own pages
get a ``Referer``, which Flask-WTF's strict https check needs on every form post, and a form's
``Origin`` stays a real origin instead of ``null``).
"""

from __future__ import annotations

from flask import Flask
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# Browsers that reached the server over https keep to https for a year (only sent when the
# public URL is https: a plain-http demo must stay reachable).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def content_security_policy(image_origins: tuple[str, ...] = ()) -> str:
    """The policy, with images also allowed from ``image_origins`` (the vendor's logo host)."""
    if not image_origins:
        return CONTENT_SECURITY_POLICY
    extra = " ".join(image_origins)
    return CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", f"img-src 'self' data: {extra}")


def security_headers(
    public_base_url: str, image_origins: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    """The headers every response carries, as (name, value) pairs."""
    headers = dict(SECURITY_HEADERS)
    headers["Content-Security-Policy"] = content_security_policy(image_origins)
    if public_base_url.lower().startswith("https://"):
        headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return tuple(headers.items())


def init_app(
    app: Flask, public_base_url: str, image_origins: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    """Add the headers to every response ``app`` sends; ``image_origins`` may serve images.
    Returns the headers (for what answers before Flask: server/web/fast_check.py)."""
    pairs = security_headers(public_base_url, image_origins)
    names = frozenset(name.lower() for name, _ in pairs)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # What ``setdefault`` does for each header, in one pass over the response's headers
        # (a lookup and a set per header cost an update check about 25 µs).
        present = names.intersection(name.lower() for name, _ in response.headers)
        if present:
            response.headers.extend([(n, v) for n, v in pairs if n.lower() not in present])
        else:
            response.headers.extend(pairs)
        return response

    return pairs
