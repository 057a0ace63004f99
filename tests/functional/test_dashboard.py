"""The admin dashboard as a signed-in user reads it, on SQLite and PostgreSQL: downloads per UTC
day and week, security revisions applied by their deadline, versions in use."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from server.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo
from server.domain import usage, users
from server.domain.models import (
    ApplyReport,
    Artifact,
    DownloadEvent,
    Installation,
    License,
    Release,
    utcnow,
)
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product, make_release
from tests.functional.test_admin_web import PASSWORD, sign_in

PLATFORM = "linux-x86_64"


@pytest.fixture
def viewer(services: Services, client: FlaskClient) -> FlaskClient:
    with services.db.sessions() as s:
        users.add_user(s, "viewer@example.com", PASSWORD, role="viewer", actor="test")
    make_product(services)
    assert sign_in(client, "viewer@example.com").status_code == 303
    return client


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get(f"/admin/{query}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    return html[start : html.index("</section>", start)]


def numbers_table(html: str) -> dict[str, int]:
    """The downloads chart's fallback table: label -> count."""
    table = section(html, "downloads-heading")
    table = table[table.index("<details>") :]
    return {
        label: int(n)
        for label, n in re.findall(r'<th scope="row">([^<]+)</th><td class="num">(\d+)</td>', table)
    }


def revision_row(html: str, revision: str) -> dict[str, str]:
    row = re.search(
        rf'<tr class="([a-z-]+)" data-revision="{re.escape(revision)}">(.*?)</tr>', html, re.S
    )
    assert row, f"no row for {revision}"
    cells = dict(re.findall(r'data-label="([^"]+)"[^>]*>(.*?)</td>', row.group(2), re.S))
    share = re.search(r'class="share-value">([^<]+)<', row.group(2))
    status = re.search(r'class="badge (?:progress|met|missed)">([^<]+)<', row.group(2))
    return {
        "class": row.group(1),
        **{k: re.sub(r"\s+", " ", v).strip() for k, v in cells.items() if k != "Share on time"},
        "share": share.group(1) if share else "",
        "status": status.group(1) if status else "",
    }


# --------------------------------------------------------------------------- downloads


def add_downloads(services: Services, *moments: datetime, range_start: int = 0) -> None:
    with services.db.sessions() as s:
        lic = s.scalars(select(License)).first()
        artifact = s.scalars(select(Artifact)).first()
        assert lic is not None and artifact is not None
        s.add_all(
            DownloadEvent(at=m, license_id=lic.id, artifact_id=artifact.id, range_start=range_start)
            for m in moments
        )
        s.commit()


@pytest.fixture
def downloadable(services: Services, viewer: FlaskClient, tmp_path: Path) -> FlaskClient:
    make_customer(services, "initech", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    make_license(services, "initech")
    make_release(services, tmp_path, "1.0.0", published_at=datetime(2024, 1, 1, tzinfo=UTC))
    return viewer


def at(day: date, hh: int = 12, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=UTC)


def test_downloads_per_day_for_30_days_with_zeros(
    services: Services, downloadable: FlaskClient
) -> None:
    today = utcnow().date()
    add_downloads(
        services,
        at(today, 0, 0),
        *(at(today - timedelta(days=2), h) for h in (0, 6, 12)),
        at(today - timedelta(days=29), 0, 1),
        at(today - timedelta(days=30), 23, 59),  # the day before the window
    )
    add_downloads(services, at(today - timedelta(days=2), 7), range_start=1024)  # a resume
    html = page(downloadable)
    counts = numbers_table(html)
    assert len(counts) == 30
    days = list(counts)
    assert (days[0], days[-1]) == (str(today - timedelta(days=29)), str(today))
    assert counts[str(today)] == 1
    assert counts[str(today - timedelta(days=1))] == 0
    assert counts[str(today - timedelta(days=2))] == 3
    assert counts[str(today - timedelta(days=29))] == 1
    assert sum(counts.values()) == 5
    chart = section(html, "downloads-heading")
    assert 'role="img"' in chart
    assert "Downloads of all products per day, last 30 days (UTC)</title>" in chart
    assert (
        f"5 downloads from {today - timedelta(days=29)} to {today}; the most, 3, on "
        f"{today - timedelta(days=2)}." in chart
    )
    assert chart.count("<rect ") == 30
    assert "https://" not in chart and "<script" not in html


def test_downloads_per_week_for_12_weeks(services: Services, downloadable: FlaskClient) -> None:
    today = utcnow().date()
    monday = today - timedelta(days=today.weekday())
    add_downloads(
        services,
        at(monday),
        at(monday - timedelta(days=1), 23, 59),  # Sunday: the week before
        at(monday - timedelta(days=7)),
        at(monday - timedelta(weeks=11)),
        at(monday - timedelta(weeks=11, days=1)),  # before the window
    )
    counts = numbers_table(page(downloadable, "?period=weeks"))
    assert len(counts) == 12
    assert counts[f"{monday} to {today}"] == 1
    assert counts[f"{monday - timedelta(days=7)} to {monday - timedelta(days=1)}"] == 2
    assert counts[f"{monday - timedelta(weeks=11)} to {monday - timedelta(weeks=10, days=1)}"] == 1
    assert sum(counts.values()) == 4


def test_downloads_filtered_by_product(
    services: Services, downloadable: FlaskClient, tmp_path: Path
) -> None:
    make_product(services, "acme-crm")
    make_release(
        services,
        tmp_path,
        "2.0.0",
        product="acme-crm",
        published_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    now = utcnow()
    add_downloads(services, now, now)  # the first artifact: acme-erp's
    with services.db.sessions() as s:
        crm = s.scalars(select(Artifact).join(Release).where(Release.version == "2.0.0")).one()
        lic = s.scalars(select(License)).first()
        assert lic is not None
        s.add(DownloadEvent(at=now, license_id=lic.id, artifact_id=crm.id))
        s.commit()
    assert sum(numbers_table(page(downloadable)).values()) == 3
    assert sum(numbers_table(page(downloadable, "?product=acme-crm")).values()) == 1
    erp = page(downloadable, "?product=acme-erp")
    assert sum(numbers_table(erp).values()) == 2
    assert '<option value="acme-erp" selected>' in erp
    # An unknown product or period is ignored rather than an error.
    assert sum(numbers_table(page(downloadable, "?product=nope&period=years")).values()) == 3


def test_days_are_utc_days_whatever_the_database_session_zone(
    services: Services, downloadable: FlaskClient
) -> None:
    day = date(2026, 3, 10)
    add_downloads(services, at(day, 23, 30), at(day + timedelta(days=1), 0, 30))
    with services.db.sessions() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SET TIME ZONE 'Pacific/Auckland'"))
        buckets = usage.downloads_per_day(s, day - timedelta(days=1), day + timedelta(days=2))
    assert [b.downloads for b in buckets] == [0, 1, 1, 0]


# --------------------------------------------------------------------------- adoption


def add_installation(
    services: Services, key_customer: str, uid: str, version: str, *, first_seen: datetime
) -> None:
    with services.db.sessions() as s:
        lic = s.scalars(select(License).where(License.customer.has(slug=key_customer))).one()
        s.add(
            Installation(
                license_id=lic.id,
                uid=uid,
                version=version,
                platform=PLATFORM,
                channel="stable",
                first_seen=first_seen,
                last_seen=utcnow(),
            )
        )
        s.commit()


def add_report(
    services: Services, uid: str, version: str, moment: datetime, outcome: str = "success"
) -> None:
    with services.db.sessions() as s:
        inst = s.scalars(select(Installation).where(Installation.uid == uid)).one()
        release = s.scalars(select(Release).where(Release.version == version)).one()
        s.add(
            ApplyReport(
                at=moment,
                license_id=inst.license_id,
                installation_uid=uid,
                release_id=release.id,
                from_version="4.0.0",
                outcome=outcome,
            )
        )
        s.commit()


def test_security_revisions_against_their_deadline(
    services: Services, viewer: FlaskClient, tmp_path: Path
) -> None:
    now = utcnow()
    published = now - timedelta(days=3)
    deadline = published + timedelta(hours=8)
    make_customer(services, "initech", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    make_customer(services, "hooli", ("maintenance", date(2020, 1, 1), date(2021, 12, 31)))
    make_customer(services, "umbrella", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    make_customer(services, "globex", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    for customer in ("initech", "hooli", "umbrella", "globex"):
        make_license(services, customer)
    make_release(services, tmp_path, "4.0.0", published_at=now - timedelta(days=100))
    make_release(
        services, tmp_path, "4.0.1", kind="security", severity="critical", published_at=published
    )
    make_release(services, tmp_path, "4.1.0", published_at=published + timedelta(hours=2))
    make_release(
        services,
        tmp_path,
        "4.1.1",
        kind="security",
        severity="minor",
        published_at=now - timedelta(hours=1),
    )
    before = published - timedelta(days=30)
    for n in range(1, 8):
        add_installation(services, "initech", f"initech-inst-{n:04d}", "4.0.0", first_seen=before)
    add_installation(services, "hooli", "hooli-inst-00001", "4.0.0", first_seen=before)  # lapsed
    add_installation(services, "umbrella", "umbrella-inst-001", "4.1.0", first_seen=before)
    add_installation(services, "globex", "globex-inst-00001", "4.0.0", first_seen=before)
    add_report(services, "initech-inst-0001", "4.0.1", deadline)  # exactly at the deadline
    add_report(services, "initech-inst-0002", "4.0.1", published + timedelta(minutes=30))
    add_report(services, "initech-inst-0003", "4.1.0", published + timedelta(hours=3))  # newer
    add_report(services, "initech-inst-0004", "4.0.1", deadline + timedelta(seconds=1))  # late
    add_report(services, "initech-inst-0005", "4.0.1", published + timedelta(hours=1), "failure")
    add_report(services, "hooli-inst-00001", "4.0.1", published + timedelta(hours=1))
    # initech 6 and 7 never applied; umbrella's installation was already on 4.1.0, newer; hooli
    # lapsed long ago and globex's license is suspended: neither was expected to apply it.
    with services.db.sessions() as s:
        suspended = s.scalars(select(License).where(License.customer.has(slug="globex"))).one()
        suspended.status = "suspended"
        s.commit()
    html = page(viewer)
    adoption = section(html, "adoption-heading")
    critical = revision_row(adoption, "acme-erp 4.0.1")
    assert critical == {
        "class": "missed",
        "Deadline": f'{deadline:%Y-%m-%d %H:%M} UTC <span class="muted">(8&nbsp;h)</span>',
        "Expected": "7",
        "On time": "3",
        "Late": "1",
        "Not yet": "3",
        "share": "42%",
        "status": "target missed",
    }
    minor = revision_row(adoption, "acme-erp 4.1.1")
    assert minor["class"] == "in-progress"
    assert minor["status"] == "in progress"
    assert (minor["Expected"], minor["On time"], minor["Not yet"]) == ("8", "0", "8")
    assert adoption.index("acme-erp 4.1.1") < adoption.index("acme-erp 4.0.1"), "newest first"
    assert "target 95%" in adoption


def test_a_revision_everyone_applied_in_time_meets_the_target(
    services: Services, viewer: FlaskClient, tmp_path: Path
) -> None:
    now = utcnow()
    published = now - timedelta(days=2)
    make_customer(services, "initech", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    make_license(services, "initech")
    make_release(services, tmp_path, "4.0.0", published_at=now - timedelta(days=100))
    make_release(
        services, tmp_path, "4.0.1", kind="security", severity="serious", published_at=published
    )
    for n in range(1, 4):
        uid = f"initech-inst-{n:04d}"
        add_installation(services, "initech", uid, "4.0.1", first_seen=now - timedelta(days=50))
        add_report(services, uid, "4.0.1", published + timedelta(hours=23, minutes=59))
    row = revision_row(section(page(viewer), "adoption-heading"), "acme-erp 4.0.1")
    assert (row["class"], row["share"], row["status"]) == ("met", "100%", "target met")
    assert (row["Expected"], row["On time"], row["Late"], row["Not yet"]) == ("3", "3", "0", "0")


def test_an_empty_dashboard_says_so(viewer: FlaskClient) -> None:
    html = page(viewer)
    assert "No security revision has been published yet." in html
    assert "No installation has checked in yet." in html
    assert sum(numbers_table(html).values()) == 0


def test_versions_in_use_with_their_share(
    services: Services, viewer: FlaskClient, tmp_path: Path
) -> None:
    make_customer(services, "initech", ("maintenance", date(2020, 1, 1), date(2099, 12, 31)))
    make_license(services, "initech")
    seen = utcnow()
    for n, version in enumerate(["4.10.0", "4.9.0", "4.10.0", "4.10.0"]):
        add_installation(services, "initech", f"initech-inst-{n:04d}", version, first_seen=seen)
    versions = section(page(viewer), "versions-heading")
    rows = re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td>.*?</svg> (\d+) <span class="muted">\((\d+%)\)',
        versions,
        re.S,
    )
    assert rows == [("4.10.0", "3", "75%"), ("4.9.0", "1", "25%")], "newest version first"


# --------------------------------------------------------------------------- the demo


def test_the_demo_fills_every_chart(services: Services, client: FlaskClient) -> None:
    load_demo(services)
    assert sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
    html = page(client)
    adoption = section(html, "adoption-heading")
    rows = [revision_row(adoption, f"acme-erp {v}") for v in ("5.0.1", "4.2.1", "4.1.1")]
    for row in rows:
        assert int(row["Expected"]) >= 10
        assert int(row["On time"]) > 0
        assert int(row["Late"]) > 0
    assert any(int(row["Not yet"]) > 0 for row in rows)
    assert sum(n > 0 for n in numbers_table(html).values()) >= 20, "downloads on most days"
    versions = section(html, "versions-heading")
    assert versions.count('<th scope="row">') >= 5
