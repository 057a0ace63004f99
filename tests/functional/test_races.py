"""Two requests adding the same thing at the same moment: a 409 that says so, never a 500."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from server.domain.models import Customer
from server.services import Services
from server.web import db_session


def _add_twice() -> str:
    """What the loser of a race does: its duplicate check passed, the winner committed first."""
    session = db_session()
    session.add(Customer(slug="initech", name="Initech", language=""))
    session.commit()
    session.add(Customer(slug="initech", name="Initech again", language=""))
    session.add(Customer(slug="hooli", name="Hooli", language=""))  # same transaction: lost too
    session.commit()
    return "unreachable"


def test_a_lost_race_is_a_conflict_and_leaves_nothing_half_written(
    app: Flask, services: Services
) -> None:
    app.add_url_rule("/api/v1/test-race", "api_race", _add_twice)
    app.add_url_rule("/admin/test-race", "page_race", _add_twice)
    client = app.test_client()

    api = client.get("/api/v1/test-race")
    assert api.status_code == 409
    assert api.get_json()["error"]["code"] == "conflict"
    assert "same moment" in api.get_json()["error"]["message"]

    page = client.get("/admin/test-race", headers={"Accept": "text/html"})
    assert page.status_code == 409
    assert "same moment" in page.get_data(as_text=True)

    with services.db.sessions() as s:
        names = s.scalars(select(Customer.name).order_by(Customer.slug)).all()
        assert names == ["Initech"], "the winner's row stays; nothing of the loser's is kept"
        assert s.scalar(select(func.count()).select_from(Customer)) == 1
