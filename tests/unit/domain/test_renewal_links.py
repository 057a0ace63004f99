"""Renewal link templates: what is accepted, and how a link is filled in for one license."""

from __future__ import annotations

from datetime import date

import pytest

from server.domain.errors import InvalidInputError
from server.domain.renewal_links import check_template, renewal_link

TEMPLATE = "https://shop.example/renew?c={customer}&l={license}&p={product}&e={ends_on}"


def test_each_placeholder_is_filled_in_and_percent_encoded() -> None:
    link = renewal_link(
        TEMPLATE, customer="initech", license_id=42, product="acme-erp", ends_on=date(2026, 12, 31)
    )
    assert link == "https://shop.example/renew?c=initech&l=42&p=acme-erp&e=2026-12-31"
    # No maintenance: an empty end; a value can never add a query or a path.
    sneaky = renewal_link(
        "https://shop.example/{customer}/renew",
        customer="a/../b?x=1#y&z",
        license_id=1,
        product="p",
        ends_on=None,
    )
    assert sneaky == "https://shop.example/a%2F..%2Fb%3Fx%3D1%23y%26z/renew"
    assert renewal_link(TEMPLATE, customer="c", license_id=1, product="p", ends_on=None).endswith(
        "&e="
    )


def test_a_url_without_placeholders_is_the_same_for_everyone() -> None:
    plain = "https://vendor.example/renew?product=acme-erp"
    assert check_template(plain) == plain
    assert renewal_link(plain, customer="x", license_id=1, product="y", ends_on=None) == plain


def test_a_placeholder_may_name_the_host_but_never_the_scheme() -> None:
    assert check_template("https://{customer}.shop.example/renew")
    for bad in (
        "{customer}://shop.example/",
        "javascript:alert({customer})",
        "//shop.example/{customer}",
        "https://shop.example/{key}",  # not a placeholder Vigor fills in (and never the key)
        "https://shop.example/{customer",
        "https://shop.example/}",
        "ftp://shop.example/{customer}",
    ):
        with pytest.raises(InvalidInputError) as refused:
            check_template(bad)
        assert refused.value.field == "renewal_url"


def test_a_stored_template_that_would_not_be_a_link_stays_as_it_was() -> None:
    long = "https://shop.example/?c={customer}" + "x" * 460
    assert check_template(long)
    assert renewal_link(long, customer="c" * 60, license_id=1, product="p", ends_on=None) == long
