"""A local SMTP server that accepts every e-mail and keeps it: ``vigor demo`` shows e-mail working
with no outside service, and the tests read what the worker sent (aiosmtpd, on a thread).

Each accepted message is written to the folder given, one ``.eml`` file per message and
recipient (open it with any mail program), and kept in :attr:`MailCatcher.messages`. A
recipient in :attr:`MailCatcher.refuse` is refused with a permanent ``550``.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's: a line per command


@dataclass(frozen=True)
class Caught:
    """One message as the server received it, for one recipient."""

    sender: str
    recipient: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        # A long header is folded right after its colon; the space that leaves is not the value's.
        return str(self.message["Subject"]).strip()

    def part(self, subtype: str) -> str:
        """The ``text/<subtype>`` part (``plain`` or ``html``), decoded."""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            raise LookupError(f"no text/{subtype} part")
        return str(body.get_content())


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() in self.catcher.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        number = self.catcher.keep(str(envelope.mail_from), list(envelope.rcpt_tos), data)
        return f"250 2.0.0 Ok: kept as message {number}"


class MailCatcher:
    """An SMTP server on ``host``:``port`` (a free port when 0) that keeps what it is sent."""

    def __init__(
        self,
        folder: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        """``options`` go to aiosmtpd's ``Controller`` (``tls_context``, ``authenticator``…)."""
        self.folder = folder
        self.options = options
        self.host = host
        self.port = port or free_port(host)
        self.messages: list[Caught] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """What ``VIGOR_SMTP_URL`` is set to for this server."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailCatcher:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, **self.options
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller.loop.close()  # the controller leaves its loop open
            self._controller = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def keep(self, sender: str, recipients: list[str], data: bytes) -> int:
        message = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            for recipient in recipients:
                self.messages.append(Caught(sender, recipient, message))
                number = len(self.messages)
                if self.folder is not None:
                    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                    (self.folder / f"{stamp}-{number:04d}.eml").write_bytes(data)
            return len(self.messages)

    def to(self, recipient: str) -> list[Caught]:
        """The messages received for ``recipient``."""
        with self._lock:
            return [m for m in self.messages if m.recipient == recipient]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
