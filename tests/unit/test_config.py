"""Settings read from ``VIGOR_*`` variables: the rate limits' defaults, and bad values refused
in one line naming the variable."""

from __future__ import annotations

import pytest

from server.config import ConfigError, Settings


def test_rate_limits_default_to_the_documented_values_counted_in_the_database() -> None:
    settings = Settings.from_env({})
    assert settings.rate_limit_check == "120/minute"
    assert settings.rate_limit_check_address == "1200/minute"
    assert settings.rate_limit_login == "10/minute"
    assert settings.rate_limit_login_account == "5/minute;20/hour"
    assert settings.rate_limit_storage_url == "", "no URL: the database"


@pytest.mark.parametrize(
    "name",
    [
        "VIGOR_RATE_LIMIT_CHECK",
        "VIGOR_RATE_LIMIT_CHECK_ADDRESS",
        "VIGOR_RATE_LIMIT_LOGIN",
        "VIGOR_RATE_LIMIT_LOGIN_ACCOUNT",
    ],
)
def test_a_limit_that_does_not_parse_is_refused_naming_its_variable(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: "ten a minute"})
    assert str(refused.value).startswith(f"{name} must be limits such as '10/minute'")
    assert Settings.from_env({name: "3/second;100/day"}) is not None


def test_downloads_default_to_redirect_and_an_unknown_mode_is_refused() -> None:
    assert Settings.from_env({}).downloads == "redirect"
    chosen = Settings.from_env({"VIGOR_DOWNLOADS": " Stream ", "VIGOR_ACCEL_LOCATION": "internal"})
    assert (chosen.downloads, chosen.accel_location) == ("stream", "/internal/")
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"VIGOR_DOWNLOADS": "proxy"})
    assert str(refused.value) == (
        "VIGOR_DOWNLOADS must be one of redirect, stream, accel, not 'proxy'"
    )
