"""Per-customer renewal links: a product's renewal URL is a template such as
``https://shop.example/renew?customer={customer}&license={license}&ends={ends_on}``, filled in
for each license where a customer sees it — check answers, the portal, offline bundles.

The placeholders are ``{customer}`` (the customer's slug), ``{license}`` (the license's id, never
its key), ``{product}`` (the product's slug) and ``{ends_on}`` (the last day of maintenance,
``YYYY-MM-DD``, empty when there is none). Each value is percent-encoded, so a value can never
add a path, a query or a fragment. The scheme must be written out (``http://`` or ``https://``)
and the link, filled in, must stay an http(s) URL with a host.

A catalogue (cached per product and process) holds the template; the expansion happens per
license when an answer is built, so one cache entry serves every customer.
"""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

from server.domain.errors import InvalidInputError
from server.domain.vocabulary import is_web_url

PLACEHOLDERS = ("customer", "license", "product", "ends_on")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SAMPLE = {"customer": "c", "license": "1", "product": "p", "ends_on": "2026-12-31"}


def check_template(template: str, field: str = "renewal_url") -> str:
    """``template`` if it is a renewal URL template Vigor can fill in.

    Raises:
        InvalidInputError: an unknown placeholder, a stray brace, a scheme other than http(s)
            written out, or a link that is not an http(s) URL once filled in.
    """
    unknown = [n for n in _PLACEHOLDER.findall(template) if n not in PLACEHOLDERS]
    if unknown:
        raise InvalidInputError(
            field,
            f"unknown placeholder {{{unknown[0][:40]}}}; use "
            + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS),
        )
    if re.search(r"[{}]", _PLACEHOLDER.sub("", template)):
        raise InvalidInputError(field, "has a '{' or '}' that is not part of a placeholder")
    filled = _PLACEHOLDER.sub(lambda m: _SAMPLE[m[1]], template)
    if not template.lower().startswith(("http://", "https://")) or not is_web_url(filled):
        raise InvalidInputError(field, f"{template[:80]!r} must be an http:// or https:// URL")
    return template


def renewal_link(
    template: str, *, customer: str, license_id: int, product: str, ends_on: date | None
) -> str:
    """``template`` with the placeholders filled in for one license (see the module docstring).

    A link that would not be an http(s) URL once filled in (a template stored before templates
    were checked) comes back as the template itself.
    """
    values = {
        "customer": customer,
        "license": str(license_id),
        "product": product,
        "ends_on": ends_on.isoformat() if ends_on else "",
    }
    filled = _PLACEHOLDER.sub(
        lambda m: quote(values[m[1]], safe="") if m[1] in values else m[0], template
    )
    return filled if is_web_url(filled) else template
