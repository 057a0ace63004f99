"""The SMTP mailer against real SMTP servers (aiosmtpd): STARTTLS and login on a submission
port, implicit TLS, an untrusted certificate, a refused recipient, a server that is down."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from server.demo.mailcatcher import MailCatcher, free_port
from server.domain.emails import Outgoing, SendError
from server.mailer import SmtpMailer
from tests.common.deploy import self_signed_certificate

MAIL = Outgoing(
    message_id="<vigor-email-1@vendor.example>",
    sender="updates@vendor.example",
    reply_to="",
    recipient="it@customer.example",
    subject="Vendor: Test e-mail",
    text="Hello\n",
    html="<p>Hello</p>\n",
)


def _authenticate(
    server: object, session: object, envelope: object, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer@vendor.example",
        b"s3cret pass",
    )
    return AuthResult(success=ok)


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the mailer trusts the system's store
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def submission(tls: ssl.SSLContext) -> Iterator[MailCatcher]:
    """Port 587 style: STARTTLS required before AUTH, AUTH required before mail."""
    with MailCatcher(
        tls_context=tls,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    ) as catcher:
        yield catcher


def test_starttls_and_login_then_the_servers_answer_is_returned(submission: MailCatcher) -> None:
    mailer = SmtpMailer(
        f"smtp://mailer%40vendor.example:s3cret%20pass@localhost:{submission.port}",
        vendor_name="Vendor",
    )
    answer = mailer.send(MAIL)
    assert answer.startswith("250 2.0.0 Ok: kept as message 1")
    (caught,) = submission.messages
    assert caught.recipient == "it@customer.example"
    assert caught.message["From"] == "Vendor <updates@vendor.example>"
    assert caught.message["Message-ID"] == "<vigor-email-1@vendor.example>"
    assert caught.part("plain").splitlines() == ["Hello"]
    assert caught.part("html").splitlines() == ["<p>Hello</p>"]


def test_an_untrusted_certificate_is_not_talked_to(
    submission: MailCatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    mailer = SmtpMailer(f"smtp://mailer%40vendor.example:s3cret%20pass@localhost:{submission.port}")
    with pytest.raises(SendError) as refused:
        mailer.send(MAIL)
    assert not refused.value.permanent, "a temporary failure: the operator fixes the trust store"
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.response
    assert submission.messages == []


def test_implicit_tls(tls: ssl.SSLContext) -> None:
    with MailCatcher(ssl_context=tls) as catcher:
        SmtpMailer(f"smtps://localhost:{catcher.port}").send(MAIL)
    assert [m.recipient for m in catcher.messages] == ["it@customer.example"]


def test_a_refused_recipient_is_permanent_and_an_unreachable_server_temporary() -> None:
    with MailCatcher() as catcher:
        catcher.refuse.add("it@customer.example")
        with pytest.raises(SendError) as refused:
            SmtpMailer(catcher.url).send(MAIL)
    assert refused.value.permanent and refused.value.response.startswith("550 ")
    with pytest.raises(SendError) as down:
        SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=5).send(MAIL)
    assert not down.value.permanent
