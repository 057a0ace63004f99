"""Sending e-mail through an SMTP server, with the standard library (docs/email.md).

``VIGOR_SMTP_URL`` names the server: ``smtp://user:pass@host:587`` speaks STARTTLS (required
once a user name is given, so that a password never crosses the network in clear),
``smtps://user:pass@host:465`` TLS from the first byte, ``smtp://host:25`` plain SMTP for a
relay or catcher on the machine. The user name and password are URL-decoded.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from urllib.parse import unquote, urlsplit

from server.domain.emails import Outgoing, SendError

TIMEOUT_SECONDS = 30.0


class SmtpMailer:
    """A :class:`~server.domain.emails.Mailer` on one SMTP server; a connection per e-mail."""

    def __init__(
        self, url: str, *, vendor_name: str = "", timeout: float = TIMEOUT_SECONDS
    ) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.vendor_name = vendor_name
        self.timeout = timeout

    def message(self, mail: Outgoing) -> EmailMessage:
        """``mail`` as a MIME message: plain text, with the HTML as its alternative."""
        message = EmailMessage()
        message["Subject"] = mail.subject
        message["From"] = (
            formataddr((self.vendor_name, mail.sender)) if self.vendor_name else mail.sender
        )
        message["To"] = mail.recipient
        if mail.reply_to:
            message["Reply-To"] = mail.reply_to
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = mail.message_id
        message["Auto-Submitted"] = "auto-generated"
        if mail.unsubscribe_url:
            message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def send(self, mail: Outgoing) -> str:
        """Hand ``mail`` to the server; returns its answer to the end of the data.

        Raises:
            SendError: permanent for a 5xx answer (the recipient or the sender refused),
                temporary for a 4xx answer, a connection or TLS failure, or a timeout.
        """
        message = self.message(mail)
        try:
            with self._connect() as smtp:
                if self.user:
                    smtp.login(self.user, self.password)
                return _transaction(smtp, mail, message)
        except smtplib.SMTPResponseException as exc:
            raise SendError(
                f"{exc.smtp_code} {_decode(exc.smtp_error)}", permanent=exc.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}", permanent=False) from None

    def _connect(self) -> smtplib.SMTP:
        """A connection, greeted, on TLS: from the start (smtps), or STARTTLS whenever the
        server offers it (required when logging in)."""
        context = ssl.create_default_context()
        if self.tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.user or smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def _transaction(smtp: smtplib.SMTP, mail: Outgoing, message: EmailMessage) -> str:
    """MAIL, RCPT and DATA for one recipient; the server's answer to DATA is what the outbox
    records (``250 2.0.0 Ok: queued as …``)."""
    smtp.ehlo_or_helo_if_needed()
    code, text = smtp.mail(mail.sender)
    if code == 250:
        code, text = smtp.rcpt(mail.recipient)
    if code not in (250, 251):
        smtp.rset()
        raise smtplib.SMTPResponseException(code, text)
    code, text = smtp.data(message.as_bytes(policy=SMTP))
    if code != 250:
        raise smtplib.SMTPResponseException(code, text)
    return f"{code} {_decode(text)}"


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text
