"""Settings read from ``VIGOR_*`` variables: the rate limits' defaults, and bad values refused
in one line naming the variable."""

from __future__ import annotations

from pathlib import Path

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


def test_the_job_queue_is_embedded_unless_a_redis_url_is_given(tmp_path: Path) -> None:
    embedded = Settings.from_env({"VIGOR_INSTANCE_DIR": str(tmp_path)})
    assert embedded.queue_url == "" and embedded.queue_file == tmp_path / "queue.sqlite3"
    assert (embedded.job_max_attempts, embedded.job_retry_seconds) == (5, 30)
    redis = Settings.from_env({"VIGOR_QUEUE_URL": "redis://queue.internal:6379/2"})
    assert redis.queue_url == "redis://queue.internal:6379/2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIGOR_QUEUE_URL": "amqp://broker"}, "VIGOR_QUEUE_URL must be a redis:// or rediss://"),
        ({"VIGOR_JOB_MAX_ATTEMPTS": "0"}, "VIGOR_JOB_MAX_ATTEMPTS must be at least 1"),
        ({"VIGOR_JOB_LEASE_SECONDS": "soon"}, "VIGOR_JOB_LEASE_SECONDS must be a whole number"),
    ],
)
def test_a_bad_queue_setting_is_refused_naming_its_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_email_settings_are_read_and_a_bad_smtp_url_or_address_is_refused() -> None:
    settings = Settings.from_env(
        {
            "VIGOR_SMTP_URL": " smtps://u%40x:p@mail.example:465 ",
            "VIGOR_MAIL_FROM": "updates@vendor.example",
            "VIGOR_MAIL_REPLY_TO": "support@vendor.example",
            "VIGOR_VENDOR_NAME": "Vendor Ltd",
        }
    )
    assert settings.smtp_url == "smtps://u%40x:p@mail.example:465"
    assert (settings.mail_from, settings.mail_reply_to) == (
        "updates@vendor.example",
        "support@vendor.example",
    )
    assert settings.vendor_name == "Vendor Ltd"
    assert Settings.from_env({}).vendor_name == "Vigor"
    for url, says in (
        ("http://mail.example", "must start with smtp:// or smtps://"),
        ("smtp://", "names no host"),
        ("smtp://mail.example:99999", "is not a URL"),
    ):
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({"VIGOR_SMTP_URL": url})
        assert str(refused.value).startswith(f"VIGOR_SMTP_URL {says}"), str(refused.value)
    with pytest.raises(ConfigError, match="VIGOR_MAIL_FROM must be an e-mail address"):
        Settings.from_env({"VIGOR_MAIL_FROM": "not an address"})
