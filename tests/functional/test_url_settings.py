"""URL settings (a product's renewal URL, the public URL) are http(s) only: refused where they are
set, and never rendered as a link when one got into the database before."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from server.cli import cli
from server.config import ConfigError, Settings
from server.domain.models import Product
from server.domain.vocabulary import is_web_url
from server.services import Services
from tests.functional.test_portal import keys, sign_in  # noqa: F401 - the portal's fixture

HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/renew",
    "/renew",
    "https://",
    "https://vendor.example/renew\r\nX: 1",
    'https://vendor.example/"onmouseover="alert(1)',
    "ftp://vendor.example/renew",
    "https://" + "a" * 600 + ".example",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_absolute_http_urls_are_web_urls(url: str) -> None:
    assert not is_web_url(url)


@pytest.mark.parametrize(
    "url", ["https://vendor.example/renew?product=acme-erp", "http://127.0.0.1:8000", "HTTPS://A.B"]
)
def test_web_urls(url: str) -> None:
    assert is_web_url(url)


@pytest.mark.parametrize("url", HOSTILE_URLS[:4])
def test_the_cli_refuses_a_renewal_url_that_is_not_http_and_adds_nothing(
    app: Flask, services: Services, url: str
) -> None:
    result = app.test_cli_runner().invoke(cli, ["product", "add", "acme-erp", "--renewal-url", url])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ") and "http:// or https://" in result.output
    with services.db.sessions() as s:
        assert s.scalar(select(Product.id)) is None


@pytest.mark.parametrize("variable", ["VIGOR_PUBLIC_URL", "VIGOR_RENEWAL_URL"])
def test_url_settings_are_http_only(tmp_path: Path, variable: str) -> None:
    env = {"VIGOR_INSTANCE_DIR": str(tmp_path), variable: "javascript:alert(1)"}
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_a_stored_javascript_renewal_url_is_never_a_link(
    client: FlaskClient,
    services: Services,
    keys: dict[str, str],  # noqa: F811
) -> None:
    with services.db.sessions() as s:  # as an older version let it be stored
        product = s.scalars(select(Product)).one()
        product.renewal_url = "javascript:alert(document.cookie)"
        product.catalog_changed()
        s.commit()
    sign_in(client, keys["lapsed"])
    page = client.get("/portal/").get_data(as_text=True)
    assert "Renew maintenance" in page
    assert "javascript:" not in page
    assert f'href="{services.settings.renewal_url}"' in page
