"""E-mail against a real SMTP server the test starts (aiosmtpd), through the real job runner, on
SQLite and PostgreSQL: renewal reminders once per stage, security notices to exactly the
entitled customers (and "renewal would bring" to lapsed ones), retries while the SMTP server is
down, permanent refusals, portal invitations and forgotten passwords, unsubscribe, and the
admin page and API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server.cli import cli
from server.config import Settings
from server.demo.mailcatcher import Caught, MailCatcher
from server.domain import api_tokens, customers, emails, jobs, portal_users, products, users
from server.domain.errors import InvitationExpiredError
from server.domain.models import Email, Job, utcnow
from server.domain.vocabulary import EmailKind, EmailState, JobKind, JobState
from server.services import Services
from tests.common.apps import vigor_app
from tests.common.factories import make_product, make_release
from tests.functional.test_admin_web import PASSWORD, sign_in, token
from tests.functional.test_jobs import Clock

VENDOR = "Initrode Software"


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, catcher: MailCatcher) -> Settings:
    return settings.with_(
        smtp_url=catcher.url,
        mail_from="updates@initrode.example",
        mail_reply_to="support@initrode.example",
        vendor_name=VENDOR,
        renewal_url="https://initrode.example/renew",
    )


@pytest.fixture
def clock(services: Services) -> Clock:
    fixed = Clock()
    services.jobs.runner.clock = fixed
    return fixed


def today() -> date:
    return utcnow().date()


def add_customer(
    services: Services,
    slug: str,
    *,
    ends_in_days: int | None,
    language: str = "en",
    product: str = "acme-erp",
    license_status: str = "active",
    licensed: bool = True,
) -> None:
    """A customer with a contact address and a year of maintenance ending ``ends_in_days`` from
    today (None: no contract), and a license of ``product``."""
    with services.db.sessions() as s:
        customer = customers.add_customer(
            s,
            slug,
            slug.title(),
            actor="test",
            contact_emails=[f"it@{slug}.example"],
            language=language,
        )
        if ends_in_days is not None:
            ends = today() + timedelta(days=ends_in_days)
            customers.add_contract(
                s,
                customer,
                "maintenance",
                ends - timedelta(days=364),
                ends,
                actor="test",
                product=products.get_product(s, "acme-erp"),
            )
        if licensed:
            lic, _ = customers.issue_license(
                s, customer, products.get_product(s, product), actor="test"
            )
            if license_status != "active":
                customers.set_license_status(s, lic, license_status, actor="test")


def worker_runs(services: Services, times: int = 1) -> None:
    """What the worker does: the hourly reminders scan, then every due job."""
    for _ in range(times):
        services.jobs.runner.ask(JobKind.REMINDERS_SCAN, "reminders_scan")
        while services.jobs.runner.run_due():
            pass


def rows(services: Services) -> list[Email]:
    with services.db.sessions() as s:
        return list(s.scalars(select(Email).order_by(Email.id)))


def link_in(caught: Caught, pattern: str) -> str:
    found = re.search(pattern + r"[^\s\"<]+", caught.part("plain"))
    assert found, f"no {pattern} link in {caught.part('plain')!r}"
    return found.group(0)


# --------------------------------------------------------------------------- renewal reminders


def test_a_contract_30_days_from_its_end_gets_exactly_one_reminder_however_often_the_worker_runs(
    services: Services, catcher: MailCatcher
) -> None:
    make_product(services, renewal_url="https://initrode.example/renew/acme")
    add_customer(services, "umbrella", ends_in_days=30)
    add_customer(services, "initech", ends_in_days=45)  # between two reminder days: none yet
    add_customer(services, "globex", ends_in_days=200)

    worker_runs(services, times=3)

    assert [m.recipient for m in catcher.messages] == ["it@umbrella.example"]
    (mail,) = catcher.messages
    ends = (today() + timedelta(days=30)).isoformat()
    assert mail.subject == f"{VENDOR}: Your maintenance for Acme-Erp ends on {ends}"
    assert mail.message["From"] == f"{VENDOR} <updates@initrode.example>"
    assert mail.message["Reply-To"] == "support@initrode.example"
    text = mail.part("plain")
    assert f"ends on {ends}, in 30 days" in text
    assert "security revisions and new versions of Acme-Erp published after that day" in text
    assert "https://initrode.example/renew/acme" in text, "the product's renewal link"
    assert "https://initrode.example/renew/acme" in mail.part("html")
    unsubscribe = link_in(mail, "http://localhost/portal/unsubscribe/")
    assert str(mail.message["List-Unsubscribe"]).strip() == f"<{unsubscribe}>"
    (row,) = rows(services)
    assert (row.kind, row.state, row.attempts) == (EmailKind.REMINDER, EmailState.SENT, 1)
    assert row.smtp_response is not None and row.smtp_response.startswith("250 ")
    assert row.sent_at is not None

    # Renewed: the next period's reminders come in their time, not again now.
    with services.db.sessions() as s:
        customer = customers.get_customer(s, "umbrella")
        customers.renew_contract(s, customer.contracts[0], actor="test")
    worker_runs(services)
    assert len(catcher.messages) == 1


def test_reminders_on_the_day_maintenance_lapses_and_after_the_grace_period(
    services: Services, catcher: MailCatcher
) -> None:
    make_product(services, grace_days=14)
    add_customer(services, "hooli", ends_in_days=-1, language="es")  # lapsed yesterday: grace
    add_customer(services, "vandelay", ends_in_days=-15)  # grace ended yesterday
    add_customer(services, "globex", ends_in_days=-100)  # long ago: nothing late
    worker_runs(services, times=2)

    by_address = {m.recipient: m for m in catcher.messages}
    assert set(by_address) == {"it@hooli.example", "it@vandelay.example"}
    assert "Su mantenimiento de Acme-Erp ha terminado" in by_address["it@hooli.example"].subject
    assert "periodo de gracia" in by_address["it@hooli.example"].part("plain")
    assert "grace period for Acme-Erp is over" in by_address["it@vandelay.example"].subject


def test_a_customer_who_unsubscribed_gets_no_reminders_but_still_security_notices(
    services: Services, catcher: MailCatcher, client: FlaskClient, tmp_path: Path
) -> None:
    make_product(services)
    add_customer(services, "umbrella", ends_in_days=30)
    worker_runs(services)
    (reminder,) = catcher.messages
    unsubscribe = link_in(reminder, "http://localhost/portal/unsubscribe/")
    path = unsubscribe.removeprefix("http://localhost")

    page = client.get(path)  # a mail scanner opening the link unsubscribes no one
    assert page.status_code == 200
    assert "Unsubscribe from renewal reminders" in page.text
    with services.db.sessions() as s:
        assert customers.get_customer(s, "umbrella").reminders_unsubscribed_at is None

    done = client.post(path)  # the button, or the mail client's one-click POST
    assert done.status_code == 200
    assert "will receive no more renewal reminders" in done.text
    with services.db.sessions() as s:
        users.add_user(s, "admin@initrode.example", PASSWORD, role="admin", actor="test")
    sign_in(client, "admin@initrode.example")
    assert (
        "no renewal reminders</strong> (unsubscribed on"
        in client.get("/admin/customers/umbrella").text
    )
    # The signature's first character changed (its last one may carry only unused bits).
    head, _, signature = path.rpartition(".")
    tampered = f"{head}.{'C' if signature[0] == 'B' else 'B'}{signature[1:]}"
    assert client.get(tampered).status_code == 404, "a tampered link"

    with services.db.sessions() as s:  # another product, 7 days from its end: a reminder due
        customer = customers.get_customer(s, "umbrella")
        other = products.add_product(s, "other-app", "Other-App", actor="test")
        customers.add_contract(
            s,
            customer,
            "maintenance",
            today() - timedelta(days=300),
            today() + timedelta(days=7),
            actor="test",
            product=other,
        )
        customers.issue_license(s, customer, other, actor="test")
    make_release(services, tmp_path, "1.0.1", kind="security", severity="serious")
    worker_runs(services)
    assert [m.subject for m in catcher.messages[1:]] == [
        f"{VENDOR}: Security revision 1.0.1 of Acme-Erp (serious)"
    ]


# --------------------------------------------------------------------------- security notices


def security_customers(services: Services) -> None:
    make_product(services)
    make_product(services, "other-app")
    add_customer(services, "umbrella", ends_in_days=100)  # entitled, English
    add_customer(services, "hooli", ends_in_days=200, language="es")  # entitled, Spanish
    add_customer(services, "vandelay", ends_in_days=-400)  # lapsed: renewal would bring it
    add_customer(services, "initech", ends_in_days=100, license_status="suspended")
    add_customer(services, "globex", ends_in_days=100, product="other-app")
    add_customer(services, "soylent", ends_in_days=100, licensed=False)
    add_customer(services, "wonka", ends_in_days=None)  # a license, never any maintenance


def test_a_critical_security_revision_emails_every_entitled_customer_in_their_language_and_no_one_else(
    services: Services, catcher: MailCatcher, tmp_path: Path
) -> None:
    security_customers(services)
    release = make_release(services, tmp_path, "1.0.1", kind="security", severity="critical")
    assert release.published_at is not None
    apply_by = (release.published_at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M UTC")

    worker_runs(services, times=2)

    notices = {m.recipient: m for m in catcher.messages if "1.0.1" in m.subject}
    assert set(notices) == {"it@umbrella.example", "it@hooli.example", "it@vandelay.example"}
    english = notices["it@umbrella.example"]
    assert english.subject == f"{VENDOR}: Security revision 1.0.1 of Acme-Erp (critical)"
    assert f"Apply it by {apply_by}" in english.part("plain")
    assert "Severity: critical." in english.part("plain")
    assert "Severity: critical." in english.part("html")
    spanish = notices["it@hooli.example"]
    assert spanish.subject == f"{VENDOR}: Revisión de seguridad 1.0.1 de Acme-Erp (crítica)"
    assert f"Aplíquela antes del {apply_by}" in spanish.part("plain")
    assert 'lang="es"' in spanish.part("html")
    kinds = {row.recipient: row.kind for row in rows(services)}
    assert kinds["it@umbrella.example"] == EmailKind.SECURITY_NOTICE
    assert kinds["it@hooli.example"] == EmailKind.SECURITY_NOTICE

    # The same release never notifies anyone twice, even when its job runs again.
    with services.db.sessions() as s:
        jobs.enqueue(
            s,
            JobKind.SECURITY_NOTICES,
            f"security_notices:release:{release.id}",
            {"release_id": release.id},
        )
        s.commit()
    worker_runs(services)
    assert len([m for m in catcher.messages if "1.0.1" in m.subject]) == 3


def test_a_lapsed_customer_gets_the_renewal_would_bring_notice(
    services: Services, catcher: MailCatcher, tmp_path: Path
) -> None:
    security_customers(services)
    make_release(services, tmp_path, "1.0.1", kind="security", severity="minor")
    worker_runs(services)
    (lapsed,) = catcher.to("it@vandelay.example")
    assert lapsed.subject == f"{VENDOR}: Security revision 1.0.1 of Acme-Erp is waiting for you"
    text = lapsed.part("plain")
    assert "renewing your maintenance would bring it" in text
    assert "https://initrode.example/renew" in text
    assert "Apply it by" not in text
    (row,) = [r for r in rows(services) if r.recipient == "it@vandelay.example"]
    assert row.kind == EmailKind.RENEWAL_WOULD_BRING


def test_an_update_that_is_not_a_security_revision_emails_no_one(
    services: Services, catcher: MailCatcher, tmp_path: Path
) -> None:
    security_customers(services)
    make_release(services, tmp_path, "1.1.0")
    worker_runs(services)
    assert not [m for m in catcher.messages if "1.1.0" in m.subject]


# --------------------------------------------------------------------------- delivery


def test_smtp_down_the_email_is_retried_with_backoff_and_nothing_is_lost(
    services: Services, catcher: MailCatcher, clock: Clock
) -> None:
    catcher.stop()
    with services.db.sessions() as s:
        emails.send_test(s, services.mail_settings(), "ops@initrode.example", actor="test")
    services.jobs.runner.run_due()

    (row,) = rows(services)
    assert (row.state, row.attempts) == (EmailState.QUEUED, 1)
    assert row.smtp_response and "Connection" in row.smtp_response
    with services.db.sessions() as s:
        job = s.scalar(select(Job).where(Job.kind == JobKind.EMAIL))
        assert job is not None and job.state == JobState.QUEUED
    assert services.jobs.runner.run_due() == 0, "not before its backoff"

    clock.advance(services.settings.job_retry_seconds + 1)
    services.jobs.runner.run_due()  # still down: a second failure, a longer wait
    assert rows(services)[0].attempts == 2
    clock.advance(services.settings.job_retry_seconds * 2 + 1)

    with MailCatcher(port=catcher.port) as again:  # the server is back
        services.jobs.runner.run_due()
        (mail,) = again.messages
    assert mail.recipient == "ops@initrode.example"
    assert mail.subject == f"{VENDOR}: Test e-mail"
    (row,) = rows(services)
    assert (row.state, row.attempts) == (EmailState.SENT, 3)


def test_a_permanent_refusal_marks_the_email_failed_and_it_is_not_tried_again(
    services: Services, catcher: MailCatcher, clock: Clock
) -> None:
    catcher.refuse.add("nobody@initrode.example")
    with services.db.sessions() as s:
        emails.send_test(s, services.mail_settings(), "nobody@initrode.example", actor="test")
    services.jobs.runner.run_due()
    clock.advance(3600)
    assert services.jobs.runner.run_due() == 0
    (row,) = rows(services)
    assert (row.state, row.attempts) == (EmailState.FAILED, 1)
    assert row.smtp_response == "550 5.1.1 No such mailbox here"
    assert catcher.messages == []


def test_an_email_job_that_runs_again_sends_nothing_twice(
    services: Services, catcher: MailCatcher
) -> None:
    with services.db.sessions() as s:
        email = emails.send_test(s, services.mail_settings(), "ops@initrode.example", actor="t")
        email_id = email.id
    services.jobs.runner.run_due()
    with services.db.sessions() as s:  # the job is asked for again (a crash, a retry)
        jobs.enqueue(s, JobKind.EMAIL, f"email:{email_id}", {"email_id": email_id})
        s.commit()
    assert services.jobs.runner.run_due() == 1
    assert len(catcher.messages) == 1
    assert rows(services)[0].attempts == 1


def test_without_an_smtp_server_configured_emails_wait_and_say_why(
    services: Services, settings: Settings
) -> None:
    services.settings = settings.with_(smtp_url="")
    with services.db.sessions() as s:
        emails.send_test(s, services.mail_settings(), "ops@initrode.example", actor="test")
    services.jobs.runner.run_due()
    (row,) = rows(services)
    assert row.state == EmailState.QUEUED
    assert row.smtp_response == "no SMTP server is configured (VIGOR_SMTP_URL)"


# --------------------------------------------------------------------------- portal users


def test_an_invited_portal_user_gets_the_link_by_email_and_sets_a_password(
    services: Services, catcher: MailCatcher, client: FlaskClient, admin: str
) -> None:
    make_product(services)
    add_customer(services, "hooli", ends_in_days=100, language="es")
    sign_in(client, admin)
    page = client.post(
        "/admin/customers/hooli/portal-users",
        data={
            "email": "Buyer@Hooli.example",
            "csrf_token": token(client, "/admin/customers/hooli"),
        },
    )
    assert page.status_code == 200
    assert "It was e-mailed to them" in page.text
    services.jobs.runner.run_due()
    (mail,) = catcher.to("buyer@hooli.example")
    assert "portal" in mail.subject.lower() and "acceso" in mail.subject.lower(), "in Spanish"
    link = link_in(mail, "http://localhost/portal/set-password/")
    assert link in page.text, "the same link the admin sees"
    with services.db.sessions() as s:
        user = portal_users.read_invitation(
            s, services.settings.secret_key, link.rsplit("/", 1)[1], utcnow()
        )
        assert user.email == "buyer@hooli.example"


def test_forgot_password_same_answer_for_anyone_a_single_use_short_link_and_throttled(
    services: Services, catcher: MailCatcher, client: FlaskClient, settings: Settings
) -> None:
    make_product(services)
    add_customer(services, "umbrella", ends_in_days=100)
    with services.db.sessions() as s:
        customer = customers.get_customer(s, "umbrella")
        portal_users.invite(
            s,
            customer,
            "buyer@umbrella.example",
            secret_key=settings.secret_key,
            actor="t",
            now=utcnow(),
        )
        portal_users.set_disabled(
            s,
            portal_users.invite(
                s,
                customer,
                "gone@umbrella.example",
                secret_key=settings.secret_key,
                actor="t",
                now=utcnow(),
            ).user,
            True,
            actor="t",
        )

    def ask(address: str) -> str:
        form = client.get("/portal/forgot-password")
        assert form.status_code == 200
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
        assert csrf
        answer = client.post(
            "/portal/forgot-password", data={"email": address, "csrf_token": csrf.group(1)}
        )
        assert answer.status_code == 200
        return answer.text

    known = ask("Buyer@Umbrella.example")
    unknown = ask("stranger@umbrella.example")
    disabled = ask("gone@umbrella.example")
    assert "If this address belongs to a portal user" in known
    assert known == unknown == disabled, "nothing tells whether the address is known"

    services.jobs.runner.run_due()
    assert [m.recipient for m in catcher.messages] == ["buyer@umbrella.example"]
    link = link_in(catcher.messages[0], "http://localhost/portal/set-password/")
    token_part = link.rsplit("/", 1)[1]
    with services.db.sessions() as s:
        with pytest.raises(InvitationExpiredError):  # an hour, not the invitation's week
            portal_users.read_invitation(
                s, settings.secret_key, token_part, utcnow() + timedelta(hours=1, seconds=1)
            )
        # The password stays as it was until the link is used.
        assert portal_users.find_user(s, "buyer@umbrella.example").password_hash is None

    path = link.removeprefix("http://localhost")
    form = client.get(path)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    assert csrf
    done = client.post(
        path,
        data={
            "password": "a new password 1",
            "confirm": "a new password 1",
            "csrf_token": csrf.group(1),
        },
    )
    assert done.status_code == 303
    assert client.get(path).status_code == 400, "the link works once"


def test_forgot_password_is_throttled(
    services: Services, catcher: MailCatcher, settings: Settings
) -> None:
    services.settings = settings.with_(rate_limit_login_account="3/minute")
    with vigor_app(services.settings) as app:
        client = app.test_client()
        app.config["WTF_CSRF_ENABLED"] = False
        codes = [
            client.post("/portal/forgot-password", data={"email": "x@umbrella.example"}).status_code
            for _ in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]


# --------------------------------------------------------------------------- admin page and API


@pytest.fixture
def admin(services: Services) -> str:
    with services.db.sessions() as s:
        users.add_user(s, "admin@initrode.example", PASSWORD, role="admin", actor="test")
    return "admin@initrode.example"


def test_the_admin_sends_a_test_email_and_sees_it_accepted_in_the_customer_filtered_log(
    services: Services, catcher: MailCatcher, client: FlaskClient, admin: str
) -> None:
    make_product(services)
    add_customer(services, "umbrella", ends_in_days=30)
    worker_runs(services)
    sign_in(client, admin)
    sent = client.post(
        "/admin/emails/test",
        data={"to": "ops@initrode.example", "csrf_token": token(client, "/admin/emails")},
    )
    assert sent.status_code == 303
    services.jobs.runner.run_due()
    assert [m.subject for m in catcher.to("ops@initrode.example")] == [f"{VENDOR}: Test e-mail"]

    page = client.get("/admin/emails")
    assert page.status_code == 200
    assert "ops@initrode.example" in page.text and "it@umbrella.example" in page.text
    assert "250 2.0.0 Ok: kept as message" in page.text
    only = client.get("/admin/emails?customer=umbrella")
    assert "it@umbrella.example" in only.text and "ops@initrode.example" not in only.text
    assert client.get("/admin/emails?customer=nobody").status_code == 404

    refused = client.post(
        "/admin/emails/test",
        data={"to": "not an address", "csrf_token": token(client, "/admin/emails")},
    )
    assert refused.status_code == 400
    assert len(rows(services)) == 2, "nothing queued"


def test_the_admin_api_lists_emails_and_sends_a_test(
    services: Services, catcher: MailCatcher, client: FlaskClient
) -> None:
    with services.db.sessions() as s:
        _, admin = api_tokens.create_token(s, "ops", role="admin", actor="test")
        _, viewer = api_tokens.create_token(s, "dash", role="viewer", actor="test")
    make_product(services)
    add_customer(services, "umbrella", ends_in_days=30)
    worker_runs(services)

    queued = client.post(
        "/api/v1/admin/emails/test",
        json={"to": "ops@initrode.example"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert queued.status_code == 202
    assert queued.json["state"] == "queued"
    assert (
        client.post(
            "/api/v1/admin/emails/test",
            json={"to": "ops@initrode.example"},
            headers={"Authorization": f"Bearer {viewer}"},
        ).status_code
        == 403
    )
    bad = client.post(
        "/api/v1/admin/emails/test", json={"to": 7}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert bad.status_code == 400 and bad.json["error"]["code"]
    services.jobs.runner.run_due()

    listed = client.get(
        "/api/v1/admin/emails?customer=umbrella", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert listed.status_code == 200
    assert [(e["recipient"], e["kind"], e["state"]) for e in listed.json] == [
        ("it@umbrella.example", "reminder", "sent")
    ]
    assert listed.json[0]["smtp_response"].startswith("250 ")
    everything = client.get("/api/v1/admin/emails", headers={"Authorization": f"Bearer {viewer}"})
    assert {e["recipient"] for e in everything.json} == {
        "it@umbrella.example",
        "ops@initrode.example",
    }
    assert client.get("/api/v1/admin/emails").status_code == 401
    assert (
        client.get(
            "/api/v1/admin/emails?state=lost", headers={"Authorization": f"Bearer {viewer}"}
        ).status_code
        == 400
    )


def test_vigor_product_sets_the_reminder_days_and_refuses_nonsense(
    app: Flask, services: Services
) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = app.test_cli_runner().invoke(cli, args=list(args))
        return result.exit_code, result.output

    code, out = run("product", "add", "acme-erp", "--reminder-days", "14, 90")
    assert (code, out.strip()) == (0, "product acme-erp added")
    code, out = run("product", "reminders", "acme-erp", "45,15,3")
    assert (code, out.strip()) == (
        0,
        "acme-erp: renewal reminders 45,15,3 days before maintenance ends",
    )
    code, out = run("product", "reminders", "acme-erp", "soon")
    assert code == 1
    assert out.count("\n") == 1 and "must be days from 1 to 365" in out
    with services.db.sessions() as s:
        assert products.get_product(s, "acme-erp").reminder_days == "45,15,3", "nothing changed"
    add_customer(services, "umbrella", ends_in_days=15)
    worker_runs(services)
    with services.db.sessions() as s:
        (row,) = list(s.scalars(select(Email)))
        assert row.dedupe_key is not None and ":15d:" in row.dedupe_key
