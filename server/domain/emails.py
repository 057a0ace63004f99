"""E-mail to customers and portal users, sent by the worker only (docs/email.md).

Whatever asks for an e-mail — a request, the reminders scan, a published security revision —
writes an :class:`~server.domain.models.Email` row (the outbox: recipient, language, subject,
plain text and HTML, already rendered) and an ``email`` job, in its own transaction. The worker
:func:`send`s it through a :class:`Mailer` (SMTP, ``server/mailer.py``) and records what the
SMTP server answered: accepted (``sent``), refused for good (a 5xx: ``failed``, never tried
again), or a temporary failure (tried again with the job system's backoff, ``failed`` once the
attempts are spent).

What an e-mail is about is its ``dedupe_key``, unique in the database: a reminder stage of one
contract period, one security revision for one address. A scan that runs twice, or two scans
at once, queue it once.

The sentences are :func:`~server.domain.messages.gettext` texts, rendered in the customer's
language when the row is written; the HTML part is the same paragraphs, escaped.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from server.domain import audit, jobs
from server.domain.catalog import load_catalog
from server.domain.coverage import MaintenanceStatus, covered_now, maintenance_status
from server.domain.customers import contacts
from server.domain.entitlements import carve_out_possible, decide, owned_lines
from server.domain.errors import InvalidInputError, NotFoundError
from server.domain.facts import LicenseFacts
from server.domain.messages import DEFAULT_LANGUAGE, LANGUAGES, Text, _, ngettext
from server.domain.models import (
    Contract,
    Customer,
    CustomerUser,
    Email,
    License,
    Product,
    Release,
)
from server.domain.offers import apply_by
from server.domain.password_links import Invitation
from server.domain.products import parse_reminder_days
from server.domain.row_facts import contract_facts, product_policy
from server.domain.users import normalize_email
from server.domain.vocabulary import (
    EmailKind,
    EmailState,
    JobKind,
    LapsePolicy,
    LicenseStatus,
    Maintenance,
    ReleaseKind,
    Severity,
)

# A reminder that is due but was not sent (the worker was down, the feature is new) is still
# sent this many days late; older ones are not (no "your maintenance ended" a year on).
REMINDER_CATCH_UP_DAYS = 7
# A link from the portal's forgot-password page works this long, once.
RESET_LINK_TTL = timedelta(hours=1)
# A security revision published (or imported with a date) longer ago than this is not news.
NOTICE_HORIZON = timedelta(days=7)
_UNSUBSCRIBE_SALT = "vigor.email.unsubscribe.v1"


@dataclass(frozen=True)
class MailSettings:
    """What composing and sending e-mail needs from the configuration."""

    vendor_name: str
    public_base_url: str
    renewal_url: str  # when the product names none
    secret_key: str
    mail_from: str = "vigor@localhost"
    reply_to: str = ""
    max_attempts: int = 5


@dataclass(frozen=True)
class Outgoing:
    """An e-mail as the mailer sends it."""

    message_id: str  # the same on every attempt: a receiver that got it twice can tell
    sender: str
    reply_to: str
    recipient: str
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None = None


class SendError(Exception):
    """The SMTP server did not accept an e-mail; ``permanent`` when trying again cannot help
    (a 5xx answer), else a temporary failure (4xx, unreachable, timed out)."""

    def __init__(self, response: str, *, permanent: bool) -> None:
        super().__init__(response)
        self.response = response
        self.permanent = permanent


class Mailer(Protocol):
    """Hands an e-mail to a mail server; returns its answer (``"250 2.0.0 queued as …"``).

    Raises:
        SendError: the server refused it or could not be reached.
    """

    def send(self, message: Outgoing) -> str: ...


# --------------------------------------------------------------------------- composing


@dataclass(frozen=True)
class Letter:
    """An e-mail's words before they are rendered in a language: a subject, paragraphs, at
    most one link to act on, and a footer."""

    subject: Text
    paragraphs: tuple[Text, ...]
    action: tuple[Text, str] | None = None  # a button's label and its URL
    footer: tuple[Text, ...] = ()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(letter: Letter, language: str, vendor_name: str) -> Rendered:
    """``letter`` in ``language``: the subject, a plain-text part and an HTML part."""
    paragraphs = [p.in_language(language) for p in letter.paragraphs]
    footer = [f.in_language(language) for f in letter.footer]
    text = "\n\n".join(paragraphs)
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    if letter.action is not None:
        label, url = letter.action[0].in_language(language), letter.action[1]
        text += f"\n\n{label}:\n{url}"
        body += (
            f'<p><a href="{html.escape(url, quote=True)}" '
            'style="display:inline-block;padding:10px 16px;background:#1f4e8c;color:#ffffff;'
            f'text-decoration:none;border-radius:4px">{html.escape(label)}</a></p>\n'
            f'<p style="font-size:13px;color:#555555">{html.escape(url)}</p>\n'
        )
    text += f"\n\n-- \n{vendor_name}"
    signature = f'<p style="color:#555555">{html.escape(vendor_name)}</p>\n'
    footer_html = "".join(
        f'<p style="font-size:12px;color:#777777">{html.escape(f)}</p>\n' for f in footer
    )
    if footer:
        text += "\n\n" + "\n".join(footer)
    subject = f"{vendor_name}: {letter.subject.in_language(language)}"
    page = (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>\n"
        '<body style="font-family:sans-serif;font-size:15px;line-height:1.5;color:#222222;'
        'max-width:600px;margin:0 auto;padding:16px">\n'
        f"{body}{signature}{footer_html}</body>\n</html>\n"
    )
    return Rendered(subject[:300], text + "\n", page)


def language_of(customer: Customer | None) -> str:
    """The language e-mails to ``customer`` are written in: theirs when we ship it."""
    if customer is not None and customer.language in LANGUAGES:
        return customer.language
    return DEFAULT_LANGUAGE


def renewal_link(customer: Customer, product: Product, default: str) -> str:
    """Where ``customer`` renews ``product``: the product's renewal URL, else the default.

    The one place a renewal link in an e-mail comes from (per-customer links plug in here).
    """
    return product_policy(product, default).renewal_url


def _address_digest(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]


def queue(
    session: Session,
    settings: MailSettings,
    *,
    recipient: str,
    kind: EmailKind,
    letter: Letter,
    language: str,
    customer: Customer | None = None,
    dedupe_key: str | None = None,
    unsubscribe_url: str | None = None,
) -> Email | None:
    """Write an e-mail and its ``email`` job into the caller's transaction (not committed).

    Returns None when an e-mail with ``dedupe_key`` exists already (the database says so).
    """
    rendered = render(letter, language, settings.vendor_name)
    email = Email(
        customer=customer,
        recipient=recipient,
        kind=kind,
        language=language,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        unsubscribe_url=unsubscribe_url,
        state=EmailState.QUEUED,
        attempts=0,
        dedupe_key=dedupe_key,
    )
    if dedupe_key is not None:
        if session.scalar(select(Email.id).where(Email.dedupe_key == dedupe_key)) is not None:
            return None
        try:
            with session.begin_nested():  # a concurrent scan may have written it meanwhile
                session.add(email)
        except IntegrityError:
            return None
    else:
        session.add(email)
        session.flush()
    jobs.enqueue(session, JobKind.EMAIL, f"email:{email.id}", {"email_id": email.id})
    return email


# --------------------------------------------------------------------------- sending


def outgoing(email: Email, settings: MailSettings) -> Outgoing:
    host = settings.mail_from.rpartition("@")[2] or "localhost"
    return Outgoing(
        message_id=f"<vigor-email-{email.id}-{_address_digest(email.recipient)}@{host}>",
        sender=settings.mail_from,
        reply_to=settings.reply_to,
        recipient=email.recipient,
        subject=email.subject,
        text=email.text,
        html=email.html,
        unsubscribe_url=email.unsubscribe_url,
    )


def send(
    session: Session, email_id: int, mailer: Mailer | None, settings: MailSettings, now: datetime
) -> EmailState | None:
    """Send e-mail ``email_id`` unless it was sent already (the ``email`` job). Commits.

    The row is marked ``sending`` (and the attempt counted) before the mail server is
    contacted; a job that runs again after the server accepted it finds it ``sent`` and sends
    nothing. (A worker killed between the server's answer and the commit sends it again, with
    the same Message-ID.)

    Raises:
        SendError: a temporary failure, after recording it: the job is tried again later.
    """
    claimed = session.execute(
        update(Email)
        .where(Email.id == email_id, Email.state != EmailState.SENT)
        .values(state=EmailState.SENDING, attempts=Email.attempts + 1)
    )
    session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None  # sent already, or gone with its customer
    email = session.get(Email, email_id, populate_existing=True)
    assert email is not None
    try:
        if mailer is None:
            raise SendError("no SMTP server is configured (VIGOR_SMTP_URL)", permanent=False)
        response = mailer.send(outgoing(email, settings))
    except SendError as exc:
        email.smtp_response = exc.response[:2000]
        if exc.permanent or email.attempts >= settings.max_attempts:
            email.state = EmailState.FAILED
        else:
            email.state = EmailState.QUEUED
        session.commit()
        if exc.permanent:
            return EmailState.FAILED
        raise
    email.state = EmailState.SENT
    email.sent_at = now
    email.smtp_response = response[:2000]
    session.commit()
    return EmailState.SENT


# --------------------------------------------------------------------------- what was sent


def list_emails(
    session: Session,
    *,
    customer: str = "",
    state: str = "",
    limit: int = 200,
) -> list[Email]:
    """The newest e-mails, of one customer (by slug) and in one state when given.

    Raises:
        NotFoundError: no customer ``customer``.
        InvalidInputError: ``state`` is not a state of an e-mail.
    """
    query = (
        select(Email)
        .options(selectinload(Email.customer))
        .order_by(Email.created_at.desc(), Email.id.desc())
        .limit(limit)
    )
    if customer:
        customer_id = session.scalar(select(Customer.id).where(Customer.slug == customer))
        if customer_id is None:
            raise NotFoundError(f"no customer {customer!r}", customer=customer)
        query = query.where(Email.customer_id == customer_id)
    if state:
        if state not in set(EmailState):
            raise InvalidInputError(
                "state", f"must be one of {', '.join(EmailState)}, not {state!r}"
            )
        query = query.where(Email.state == state)
    return list(session.scalars(query))


def send_test(session: Session, settings: MailSettings, recipient: str, *, actor: str) -> Email:
    """An admin's test e-mail to ``recipient``: it shows whether the SMTP settings work. Commits.

    Raises:
        InvalidInputError: ``recipient`` is not an e-mail address.
    """
    address = normalize_email(recipient)
    letter = Letter(
        _("Test e-mail"),
        (
            _("This is a test e-mail from {vendor}.", vendor=settings.vendor_name),
            _("If you can read it, e-mail from the update server reaches you."),
        ),
    )
    email = queue(
        session,
        settings,
        recipient=address,
        kind=EmailKind.TEST,
        letter=letter,
        language=DEFAULT_LANGUAGE,
    )
    assert email is not None
    audit.record(session, actor, "email.test", address)
    session.commit()
    return email


# --------------------------------------------------------------------------- portal users


def invitation(
    session: Session, settings: MailSettings, invited: Invitation[CustomerUser], link: str
) -> Email:
    """Queue the e-mail that carries a portal user's invitation link (not committed)."""
    user = invited.user
    language = language_of(user.customer)
    letter = Letter(
        _("Your access to the customer portal"),
        (
            _(
                "You have been given access to the {vendor} customer portal for {customer}.",
                vendor=settings.vendor_name,
                customer=user.customer.name,
            ),
            _(
                "Choose your password with the link below. It works once, until {expires}.",
                expires=_when(invited.expires_at),
            ),
        ),
        (_("Choose a password"), link),
    )
    return _queue_personal(session, settings, user, EmailKind.PORTAL_INVITATION, letter, language)


def password_reset(
    session: Session, settings: MailSettings, invited: Invitation[CustomerUser], link: str
) -> Email:
    """Queue the e-mail that carries a portal user's set-password link after a reset or a
    forgotten password (not committed)."""
    user = invited.user
    language = language_of(user.customer)
    letter = Letter(
        _("Choose a new password"),
        (
            _(
                "Someone asked for a new password for {email} on the {vendor} customer portal.",
                email=user.email,
                vendor=settings.vendor_name,
            ),
            _(
                "Choose a new password with the link below. It works once, until {expires}.",
                expires=_when(invited.expires_at),
            ),
            _("If it was not you, ignore this e-mail: your password stays as it is."),
        ),
        (_("Choose a new password"), link),
    )
    return _queue_personal(session, settings, user, EmailKind.PASSWORD_RESET, letter, language)


def _queue_personal(
    session: Session,
    settings: MailSettings,
    user: CustomerUser,
    kind: EmailKind,
    letter: Letter,
    language: str,
) -> Email:
    email = queue(
        session,
        settings,
        recipient=user.email,
        kind=kind,
        letter=letter,
        language=language,
        customer=user.customer,
    )
    assert email is not None
    return email


# --------------------------------------------------------------------------- unsubscribe


def unsubscribe_token(secret_key: str, customer: Customer) -> str:
    """The signed token of ``customer``'s unsubscribe link (no expiry: it is in old e-mails)."""
    token = URLSafeSerializer(secret_key, salt=_UNSUBSCRIBE_SALT).dumps([customer.id])
    return token if isinstance(token, str) else token.decode()


def unsubscribe_url(settings: MailSettings, customer: Customer) -> str:
    token = unsubscribe_token(settings.secret_key, customer)
    return f"{settings.public_base_url}/portal/unsubscribe/{token}"


def read_unsubscribe(session: Session, secret_key: str, token: str) -> Customer:
    """The customer an unsubscribe link is for.

    Raises:
        InvalidInputError: the token is not one this server signed, or its customer is gone.
    """
    try:
        (customer_id,) = URLSafeSerializer(secret_key, salt=_UNSUBSCRIBE_SALT).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise InvalidInputError("token", "this link is not valid") from None
    customer = session.get(Customer, customer_id) if isinstance(customer_id, int) else None
    if customer is None:
        raise InvalidInputError("token", "this link is not valid")
    return customer


def unsubscribe(session: Session, secret_key: str, token: str, now: datetime) -> Customer:
    """Stop renewal reminders to the customer an unsubscribe link is for. Commits.

    Raises:
        InvalidInputError: see :func:`read_unsubscribe`.
    """
    customer = read_unsubscribe(session, secret_key, token)
    if customer.reminders_unsubscribed_at is None:
        customer.reminders_unsubscribed_at = now
        audit.record(session, "unsubscribe link", "customer.unsubscribe", customer.slug)
        session.commit()
    return customer


# --------------------------------------------------------------------------- renewal reminders


def reminder_stage(
    product: Product, status: MaintenanceStatus, today: datetime | None = None
) -> tuple[str, int] | None:
    """The reminder due for this maintenance status on ``today`` (the vendor's local day),
    as its stage name and the days to (or since) it, or None.

    Stages, each sent once per contract period: ``<N>d`` N days before maintenance ends (the
    product's reminder days), ``ended`` on the day it lapses, and ``grace-over`` after the
    grace period. A stage missed by more than :data:`REMINDER_CATCH_UP_DAYS` is not sent late
    (of two due at once, the nearer one is).
    """
    ends_on = status.maintenance_ends_on
    if ends_on is None or status.next_starts_on is not None or today is None:
        return None
    day = today.date()
    if status.status in (Maintenance.ACTIVE, Maintenance.EXPIRING):
        left = (ends_on - day).days
        due = [
            n
            for n in parse_reminder_days(product.reminder_days)
            if n - REMINDER_CATCH_UP_DAYS <= left <= n
        ]
        return (f"{min(due)}d", left) if due else None
    lapse_day = ends_on + timedelta(days=1)
    if status.status == Maintenance.GRACE:
        since = (day - lapse_day).days
        return ("ended", since) if since <= REMINDER_CATCH_UP_DAYS else None
    if status.status == Maintenance.LAPSED:
        if product.grace_days > 0:
            since = (day - (lapse_day + timedelta(days=product.grace_days))).days
            return ("grace-over", since) if since <= REMINDER_CATCH_UP_DAYS else None
        since = (day - lapse_day).days
        return ("ended", since) if since <= REMINDER_CATCH_UP_DAYS else None
    return None


def scan_reminders(session: Session, settings: MailSettings, now: datetime) -> int:
    """Queue every renewal reminder due at ``now`` that was not queued before (the
    ``reminders_scan`` job, run periodically by the worker). Commits; returns how many."""
    customers = session.scalars(
        select(Customer)
        .where(Customer.reminders_unsubscribed_at.is_(None))
        .order_by(Customer.id)
        .options(
            selectinload(Customer.licenses).selectinload(License.product),
            selectinload(Customer.contracts).selectinload(Contract.product),
        )
    ).all()
    queued = 0
    for customer in customers:
        addresses = contacts(customer)
        if not addresses:
            continue
        products = {
            lic.product.id: lic.product
            for lic in customer.licenses
            if lic.status == LicenseStatus.ACTIVE
        }
        for product in products.values():
            queued += _remind(session, settings, customer, product, addresses, now)
    session.commit()
    return queued


def _status(
    customer: Customer, product: Product, now: datetime, default_url: str
) -> tuple[LicenseFacts, MaintenanceStatus]:
    facts = LicenseFacts(
        LicenseStatus.ACTIVE,
        product.slug,
        customer.slug,
        tuple(contract_facts(c) for c in customer.contracts),
    )
    return facts, maintenance_status(facts, product_policy(product, default_url), now)


def _remind(
    session: Session,
    settings: MailSettings,
    customer: Customer,
    product: Product,
    addresses: Sequence[str],
    now: datetime,
) -> int:
    _facts, status = _status(customer, product, now, settings.renewal_url)
    local_now = now.astimezone(ZoneInfo(product.timezone))
    stage = reminder_stage(product, status, local_now)
    if stage is None or status.maintenance_ends_on is None:
        return 0
    name, _days = stage
    period = f"reminder:{customer.id}:{product.id}:{status.maintenance_ends_on.isoformat()}:{name}"
    keys = {address: f"{period}:{_address_digest(address)}" for address in addresses}
    sent = set(session.scalars(select(Email.dedupe_key).where(Email.dedupe_key.in_(keys.values()))))
    if sent.issuperset(keys.values()):
        return 0  # the hourly scan, once this stage went out
    language = language_of(customer)
    letter = _reminder_letter(session, settings, customer, product, status, name, now)
    unsubscribe = unsubscribe_url(settings, customer)
    queued = 0
    for address in addresses:
        email = queue(
            session,
            settings,
            recipient=address,
            kind=EmailKind.REMINDER,
            letter=letter,
            language=language,
            customer=customer,
            dedupe_key=keys[address],
            unsubscribe_url=unsubscribe,
        )
        queued += email is not None
    return queued


def _reminder_letter(
    session: Session,
    settings: MailSettings,
    customer: Customer,
    product: Product,
    status: MaintenanceStatus,
    stage: str,
    now: datetime,
) -> Letter:
    ends = status.maintenance_ends_on
    link = renewal_link(customer, product, settings.renewal_url)
    hello = _("Hello {customer},", customer=customer.name)
    keeps = (
        _("After that you can no longer download any release of {product}.", product=product.name)
        if product.lapse_policy == LapsePolicy.REVOKE
        else _("You keep every release published until then.")
    )
    paragraphs: list[Text]
    if stage[:-1].isdigit():  # "30d": before it ends
        left = (ends - now.astimezone(ZoneInfo(product.timezone)).date()).days if ends else 0
        subject = _(
            "Your maintenance for {product} ends on {ends}", product=product.name, ends=ends
        )
        paragraphs = [
            hello,
            ngettext(
                "Your maintenance for {product} ends on {ends}, in {n} day.",
                "Your maintenance for {product} ends on {ends}, in {n} days.",
                max(left, 0),
                product=product.name,
                ends=ends,
            ),
            _(
                "Updates, security revisions and new versions of {product} published after that day will not reach you unless you renew.",
                product=product.name,
            ),
            keeps,
        ]
    else:
        missing = _missing_since(session, customer, product, status, settings.renewal_url)
        if stage == "ended":
            subject = _("Your maintenance for {product} has ended", product=product.name)
            paragraphs = [
                hello,
                _(
                    "Your maintenance for {product} ended on {ends}.",
                    product=product.name,
                    ends=ends,
                ),
            ]
            if status.grace_ends_on is not None:
                paragraphs.append(
                    _(
                        "You keep receiving updates during the grace period, until {grace_ends}. Renew before then to miss nothing.",
                        grace_ends=status.grace_ends_on,
                    )
                )
            else:
                paragraphs.append(
                    _(
                        "Updates, security revisions and new versions of {product} published from now on will not reach you unless you renew.",
                        product=product.name,
                    )
                )
        else:
            subject = _("Your grace period for {product} is over", product=product.name)
            paragraphs = [
                hello,
                _(
                    "Your maintenance for {product} ended on {ends} and its grace period is over.",
                    product=product.name,
                    ends=ends,
                ),
                _(
                    "Updates, security revisions and new versions of {product} published from now on will not reach you unless you renew.",
                    product=product.name,
                ),
            ]
        if missing:
            paragraphs.append(missing)
    footer = (
        _(
            "You receive this reminder because {customer} has maintenance for {product}. To stop renewal reminders, open this link: {link}",
            customer=customer.name,
            product=product.name,
            link=unsubscribe_url(settings, customer),
        ),
    )
    return Letter(subject, tuple(paragraphs), (_("Renew maintenance"), link), footer)


def _missing_since(
    session: Session,
    customer: Customer,
    product: Product,
    status: MaintenanceStatus,
    default_url: str,
) -> Text:
    """What a customer whose maintenance ended misses already: the releases published since."""
    if status.lapsed_at is None:
        return Text()
    catalog = load_catalog(session, product, default_url)
    missing = [
        r
        for r in catalog.index.published_since(status.lapsed_at)
        if not r.yanked and (not r.customers or customer.slug in r.customers)
    ]
    if not missing:
        return Text()
    security = sum(1 for r in missing if r.kind == ReleaseKind.SECURITY)
    newest = max(r.version for r in missing)
    return _(
        "Since then {releases} were published, including {security}; the newest is {newest}.",
        releases=ngettext("{n} release", "{n} releases", len(missing)),
        security=ngettext("{n} security revision", "{n} security revisions", security),
        newest=newest,
    )


# --------------------------------------------------------------------------- security notices


def ask_for_security_notices(session: Session, release: Release) -> None:
    """Queue the job that e-mails the customers a just-published security revision concerns,
    in the publish's transaction (not committed)."""
    if release.kind != ReleaseKind.SECURITY:
        return
    session.flush()
    jobs.enqueue(
        session,
        JobKind.SECURITY_NOTICES,
        f"security_notices:release:{release.id}",
        {"release_id": release.id},
    )


def security_notices(
    session: Session, settings: MailSettings, release_id: int, now: datetime
) -> int:
    """E-mail a published security revision (the ``security_notices`` job). Commits; returns
    how many e-mails were queued.

    To the contacts of every customer with an active license of the product who is entitled to
    it — the same decision a check makes (:func:`~server.domain.entitlements.decide`) — with
    its severity and apply-by deadline; to those whose maintenance lapsed and who would be
    entitled to it with maintenance now, a notice that renewal would bring it; to no one else.
    Keyed per release and address: the same release never notifies an address twice.
    """
    release = session.get(Release, release_id)
    if release is None or release.is_draft or release.is_yanked:
        return 0
    if release.kind != ReleaseKind.SECURITY or release.published_at is None:
        return 0
    if release.published_at < now - NOTICE_HORIZON:
        return 0  # history imported with its old date: not news
    product = release.product
    catalog = load_catalog(session, product, settings.renewal_url)
    facts = next((r for r in catalog.index.newest_first if r.id == release.id), None)
    if facts is None:
        return 0
    customers = session.scalars(
        select(Customer)
        .where(
            Customer.id.in_(  # not DISTINCT: PostgreSQL cannot compare the JSON of contacts
                select(License.customer_id).where(
                    License.product_id == product.id, License.status == LicenseStatus.ACTIVE
                )
            )
        )
        .order_by(Customer.id)
        .options(selectinload(Customer.contracts).selectinload(Contract.product))
    ).all()
    policy = catalog.policy
    deadline = apply_by(facts, policy, now)
    queued = 0
    for customer in customers:
        addresses = contacts(customer)
        if not addresses:
            continue
        lic, status = _status(customer, product, now, settings.renewal_url)
        owned = (
            owned_lines(lic, policy, catalog.index.newest_first, status)
            if carve_out_possible(policy, status)
            else frozenset()
        )
        if decide(lic, policy, facts, now, owned_lines=owned, status=status).entitled:
            kind = EmailKind.SECURITY_NOTICE
            letter = _security_letter(settings, customer, release, deadline)
        elif (
            status.status == Maintenance.LAPSED
            and decide(lic, policy, facts, now, status=covered_now(now)).entitled
        ):
            kind = EmailKind.RENEWAL_WOULD_BRING
            letter = _renewal_brings_letter(settings, customer, product, release, status)
        else:
            continue
        for address in addresses:
            email = queue(
                session,
                settings,
                recipient=address,
                kind=kind,
                letter=letter,
                language=language_of(customer),
                customer=customer,
                dedupe_key=f"security:{release.id}:{customer.id}:{_address_digest(address)}",
            )
            queued += email is not None
    session.commit()
    return queued


_SEVERITY_WORDS = {
    Severity.CRITICAL: _("critical"),
    Severity.SERIOUS: _("serious"),
    Severity.MINOR: _("minor"),
}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _security_letter(
    settings: MailSettings, customer: Customer, release: Release, deadline: datetime | None
) -> Letter:
    product = release.product
    severity = _SEVERITY_WORDS.get(release.severity, Text()) if release.severity else Text()
    paragraphs = [
        _("Hello {customer},", customer=customer.name),
        _(
            "Security revision {version} of {product} is available to you.",
            version=release.version,
            product=product.name,
        ),
    ]
    if release.severity is not None:
        paragraphs.append(_("Severity: {severity}.", severity=severity))
    if deadline is not None:
        paragraphs.append(
            _(
                "Apply it by {deadline}. Installations with the update agent are offered it at their next check.",
                deadline=_when(deadline),
            )
        )
    paragraphs.append(_("Its release notes and downloads are in the customer portal."))
    subject = (
        _(
            "Security revision {version} of {product} ({severity})",
            version=release.version,
            product=product.name,
            severity=severity,
        )
        if release.severity is not None
        else _(
            "Security revision {version} of {product}",
            version=release.version,
            product=product.name,
        )
    )
    return Letter(
        subject, tuple(paragraphs), (_("Open the portal"), f"{settings.public_base_url}/portal/")
    )


def _renewal_brings_letter(
    settings: MailSettings,
    customer: Customer,
    product: Product,
    release: Release,
    status: MaintenanceStatus,
) -> Letter:
    return Letter(
        _(
            "Security revision {version} of {product} is waiting for you",
            version=release.version,
            product=product.name,
        ),
        (
            _("Hello {customer},", customer=customer.name),
            _(
                "Security revision {version} of {product} was published. Your maintenance ended on {ends}, so it does not reach you; renewing your maintenance would bring it.",
                version=release.version,
                product=product.name,
                ends=status.maintenance_ends_on,
            ),
        ),
        (_("Renew maintenance"), renewal_link(customer, product, settings.renewal_url)),
    )
