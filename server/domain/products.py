"""Products and their lines' lifecycle."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.domain import audit
from server.domain.errors import ConflictError, InvalidInputError, NotFoundError
from server.domain.models import Product, ProductLine
from server.domain.renewal_links import check_template
from server.domain.vocabulary import SLUG_RE, LapsePolicy, LineStatus, parse


def check_slug(field: str, slug: str) -> str:
    if not SLUG_RE.match(slug or ""):
        raise InvalidInputError(field, f"{slug!r} must be lowercase letters, digits and dashes")
    return slug


def get_product(session: Session, slug: str) -> Product:
    """The product named ``slug``.

    Raises:
        NotFoundError: there is none.
    """
    product = session.scalar(select(Product).where(Product.slug == slug))
    if product is None:
        raise NotFoundError(f"no product {slug!r}", product=slug)
    return product


def add_product(
    session: Session,
    slug: str,
    name: str,
    *,
    actor: str,
    lapse_policy: str = LapsePolicy.FALLBACK,
    security_carveout_months: int = 0,
    grace_days: int = 0,
    expiring_window_days: int = 30,
    timezone: str = "UTC",
    renewal_url: str | None = None,
) -> Product:
    """Create a product; its slug is what licenses, agents and URLs name it by."""
    check_slug("slug", slug)
    policy = parse(LapsePolicy, "lapse_policy", lapse_policy)
    if security_carveout_months < 0 or grace_days < 0 or expiring_window_days < 0:
        raise InvalidInputError("policy", "months and days cannot be negative")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError("timezone", f"unknown time zone {timezone!r}") from None
    if renewal_url is not None:
        check_template(renewal_url)
    if session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        raise ConflictError(f"product {slug!r} already exists", field="slug")
    product = Product(
        slug=slug,
        name=name or slug,
        lapse_policy=policy,
        security_carveout_months=security_carveout_months,
        grace_days=grace_days,
        expiring_window_days=expiring_window_days,
        timezone=timezone,
        renewal_url=renewal_url,
    )
    session.add(product)
    audit.record(session, actor, "product.add", slug, name=product.name, lapse_policy=policy)
    session.commit()
    return product


def set_renewal_url(
    session: Session, product: Product, renewal_url: str | None, *, actor: str
) -> Product:
    """Set (or with None clear: the instance's ``VIGOR_RENEWAL_URL`` applies) the product's
    renewal link, a template with ``{customer}``, ``{license}``, ``{product}`` and ``{ends_on}``
    placeholders (:mod:`server.domain.renewal_links`).

    Raises:
        InvalidInputError: not an http(s) URL template Vigor can fill in.
    """
    if renewal_url is not None:
        check_template(renewal_url)
    if product.renewal_url != renewal_url:
        product.catalog_changed()  # cached catalogues hold the template
        product.renewal_url = renewal_url
        audit.record(
            session, actor, "product.renewal_url", product.slug, renewal_url=renewal_url or ""
        )
        session.commit()
    return product


def set_line_status(
    session: Session, product: Product, line: str, status: str, *, actor: str
) -> ProductLine:
    """Move a product line through supported → security-only → end-of-life."""
    new_status = parse(LineStatus, "status", status)
    row = session.scalar(
        select(ProductLine).where(ProductLine.product_id == product.id, ProductLine.name == line)
    )
    if row is None:
        raise NotFoundError(f"{product.slug} has no line {line!r}")
    row.status = new_status
    product.catalog_changed()
    audit.record(session, actor, "line.status", f"{product.slug} {line}", status=new_status)
    session.commit()
    return row


def list_products(session: Session) -> list[Product]:
    """Every product, by slug."""
    return list(session.scalars(select(Product).order_by(Product.slug)))
