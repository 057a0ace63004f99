"""Two first checks of one installation at the same moment — an agent's retry, or a proxy that
passes a slow check on to another process (deploy/nginx/vigor.conf retries checks) — both
succeed and record the installation once. (The second answered 409 when both had read "not
yet registered": bench/soak.py saw it under load.)"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from server.db.licenses import LicenseReads
from server.domain.licensing import authenticate_license, register_installation
from server.domain.models import Installation, utcnow
from server.services import Services
from tests.common.factories import make_customer, make_license, make_product


def test_two_first_checks_of_one_installation_at_once_both_register_it(
    services: Services,
) -> None:
    make_product(services)
    today = utcnow().date()
    make_customer(services, "initech", ("maintenance", today - timedelta(days=10), today))
    key = make_license(services, "initech")
    uid = "installation-seen-twice"
    # Both requests read the license before either wrote: neither knows the installation.
    first_read = authenticate_license(LicenseReads(services.db), key, installation_uid=uid)
    second_read = authenticate_license(LicenseReads(services.db), key, installation_uid=uid)
    assert first_read.installation is None and second_read.installation is None
    for seen, version in ((first_read, "1.0.0"), (second_read, "1.0.1")):
        with services.db.session() as session:  # commits, as the check does
            assert register_installation(
                lambda session=session: session,
                seen,
                uid,
                version=version,
                platform="linux-x86_64",
                channel="stable",
                now=utcnow(),
                touch_interval=timedelta(hours=1),
            )
    with services.db.sessions() as session:
        rows = session.scalars(select(Installation).where(Installation.uid == uid)).all()
        assert len(rows) == 1
        assert session.scalar(select(func.count()).select_from(Installation)) == 1
