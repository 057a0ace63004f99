"""Products and their lines' lifecycle."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


def parse_reminder_days(text: str) -> tuple[int, ...]:
    """``"60,30,7"`` as (60, 30, 7); "" for none.

    Raises:
        InvalidInputError: not whole numbers of days from 1 to 365, separated by commas.
    """
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= 365:
            raise InvalidInputError(
                "reminder_days", f"must be days from 1 to 365 separated by commas, not {text!r}"
            )
        days.add(int(part))
    return tuple(sorted(days, reverse=True))


def get_product(session: Session, slug: str) -> Product:
    """The product named ``slug``.

    Raises:
        NotFoundError: there is none.
    """
    product = session.scalar(select(Product).where(Product.slug == slug))
    if product is None:
        raise NotFoundError(f"no product {slug!r}", product=slug)
    return product


@dataclass(frozen=True)
class Policy:
    """A product's policy fields: what lapsing means, the grace and warning windows, the zone
    its contract days are counted in, and where customers renew."""

    lapse_policy: str = LapsePolicy.FALLBACK
    security_carveout_months: int = 0
    grace_days: int = 0
    expiring_window_days: int = 30
    timezone: str = "UTC"
    renewal_url: str | None = None

    def checked(self) -> dict[str, object]:
        """The fields as the product stores them.

        Raises:
            InvalidInputError: a value outside what the product allows (the field named).
        """
        policy = parse(LapsePolicy, "lapse_policy", self.lapse_policy)
        for field, maximum in POLICY_LIMITS.items():
            value = getattr(self, field)
            if not 0 <= value <= maximum:
                raise InvalidInputError(field, f"must be a whole number from 0 to {maximum}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError("timezone", f"unknown time zone {self.timezone!r}") from None
        url = self.renewal_url or None
        if url is not None:
            if len(url) > RENEWAL_URL_LENGTH:
                raise InvalidInputError(
                    "renewal_url", f"must be at most {RENEWAL_URL_LENGTH} characters"
                )
            check_template(url)
        return {
            "lapse_policy": policy,
            "security_carveout_months": self.security_carveout_months,
            "grace_days": self.grace_days,
            "expiring_window_days": self.expiring_window_days,
            "timezone": self.timezone,
            "renewal_url": url,
        }


# The largest value of each number of a policy (what the CLI's options allow).
POLICY_LIMITS = {"security_carveout_months": 120, "grace_days": 365, "expiring_window_days": 365}
RENEWAL_URL_LENGTH = 500  # products.renewal_url
NAME_LENGTH = 200  # products.name
LINE_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")


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
    reminder_days: str = "60,30,7",
) -> Product:
    """Create a product; its slug is what licenses, agents and URLs name it by;
    ``reminder_days``: the days before maintenance ends on which customers are reminded.

    Raises:
        InvalidInputError: a bad slug, name, policy field or reminder days.
        ConflictError: the slug is taken.
    """
    check_slug("slug", slug)
    days = ",".join(str(d) for d in parse_reminder_days(reminder_days))
    fields = Policy(
        lapse_policy,
        security_carveout_months,
        grace_days,
        expiring_window_days,
        timezone,
        renewal_url,
    ).checked()
    if session.scalar(select(Product.id).where(Product.slug == slug)) is not None:
        raise ConflictError(f"product {slug!r} already exists", field="slug")
    product = Product(slug=slug, name=_name(name) or slug, reminder_days=days, **fields)
    session.add(product)
    audit.record(
        session, actor, "product.add", slug, name=product.name, lapse_policy=fields["lapse_policy"]
    )
    session.commit()
    return product


def update_product(
    session: Session, product: Product, *, name: str, policy: Policy, actor: str
) -> Product:
    """Change a product's name and policy; the audit event names the fields that changed.

    Raises:
        InvalidInputError: an empty name or a bad policy field; nothing changes.
    """
    if not _name(name):
        raise InvalidInputError("name", "must not be empty")
    wanted = {"name": _name(name), **policy.checked()}
    changed = [field for field, value in wanted.items() if getattr(product, field) != value]
    if changed:
        product.catalog_changed()  # the policy decides what every check offers
        for field in changed:
            setattr(product, field, wanted[field])
        audit.record(session, actor, "product.update", product.slug, changed=changed)
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


def add_line(
    session: Session, product: Product, name: str, status: str, *, actor: str
) -> ProductLine:
    """A new line of ``product`` (``"5.x"``), before any release of it is published.

    Raises:
        InvalidInputError: a bad name or status.
        ConflictError: the product has that line already.
    """
    name = name.strip()
    if not LINE_RE.match(name):
        raise InvalidInputError(
            "line", "must be 1 to 32 letters, digits, dots, dashes or underscores (like 5.x)"
        )
    line_status = parse(LineStatus, "status", status)
    if any(line.name == name for line in product.lines):
        raise ConflictError(f"{product.slug} has a line {name!r} already", field="line")
    product.catalog_changed()
    line = ProductLine(product=product, name=name, status=line_status)
    session.add(line)
    audit.record(session, actor, "line.add", f"{product.slug} {name}", status=line_status)
    session.commit()
    return line


def _name(name: str) -> str:
    name = name.strip()
    if len(name) > NAME_LENGTH:
        raise InvalidInputError("name", f"must be at most {NAME_LENGTH} characters")
    return name


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


def set_reminder_days(session: Session, product: Product, text: str, *, actor: str) -> str:
    """The days before maintenance ends on which ``product``'s customers get a renewal
    reminder ("90,30,7"; "" for none). Returns them as stored.

    Raises:
        InvalidInputError: see :func:`parse_reminder_days`.
    """
    days = ",".join(str(d) for d in parse_reminder_days(text))
    if product.reminder_days != days:
        product.reminder_days = days
        audit.record(session, actor, "product.reminder_days", product.slug, days=days)
        session.commit()
    return days


def list_products(session: Session) -> list[Product]:
    """Every product, by slug."""
    return list(session.scalars(select(Product).order_by(Product.slug)))
