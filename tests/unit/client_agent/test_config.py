"""Every bad configuration value gets one readable line naming it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from client_agent.config import detect_platform, load_config
from client_agent.errors import ConfigError

GOOD = """
server_url = "https://updates.example.com/"
license_key = "vgl_abc"
product = "acme-erp"
install_dir = "app"
state_dir = "state"
trusted_root = "root.json"
health_check = "bin/acme-erp --version"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etc" / "agent.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_good_config_resolves_paths_against_its_own_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.server_url == "https://updates.example.com"
    assert config.install_dir == tmp_path / "etc" / "app"
    assert config.trusted_root == tmp_path / "etc" / "root.json"
    assert config.health_check == ("bin/acme-erp", "--version")
    assert config.platform == detect_platform()
    assert config.channel == "stable"
    assert config.installed_version is None


def test_license_key_from_a_file_and_limits(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "key").write_text("vgl_from_file\n")
    text = GOOD.replace('license_key = "vgl_abc"', 'license_key_file = "key"')
    text += "\n[limits]\ndownload_attempts = 2\nnetwork_timeout = 3\nfree_space_margin = 0\n"
    config = load_config(write(tmp_path, text))
    assert config.license_key == "vgl_from_file"
    assert (config.download_attempts, config.network_timeout) == (2, 3.0)
    assert config.free_space_margin == 0


def test_health_check_as_a_list_and_platform_given(tmp_path: Path) -> None:
    text = GOOD.replace('"bin/acme-erp --version"', '["bin/acme erp", "-v"]')
    config = load_config(write(tmp_path, text + 'platform = "windows-x86_64"\n'))
    assert config.health_check == ("bin/acme erp", "-v")
    assert config.platform == "windows-x86_64"


Change = Callable[[str], str]


def replace(old: str, new: str) -> Change:
    return lambda text: text.replace(old, new)


def add(line: str) -> Change:
    return lambda text: text + line + "\n"


BAD: dict[str, tuple[Change, str]] = {
    "missing-product": (replace('product = "acme-erp"\n', ""), "'product' is required"),
    "empty-product": (replace('"acme-erp"', '""'), "'product' is empty"),
    "product-not-a-slug": (replace('"acme-erp"', '"acme erp"'), "'product' has characters"),
    "wrong-type": (replace('product = "acme-erp"', "product = 7"), "'product' must be a string"),
    "bool-for-a-number": (add("check_interval = true"), "'check_interval' must be an integer"),
    "bad-url-scheme": (replace('"https://updates.example.com/"', '"ftp://x"'), "http(s) URL"),
    "url-without-host": (replace('"https://updates.example.com/"', '"https://"'), "http(s) URL"),
    "bad-port": (replace("example.com/", "example.com:http/"), "bad port"),
    "bad-proxy": (add('proxy = "proxy:3128"'), "'proxy' must be an http(s) URL"),
    "two-keys": (add('license_key_file = "k"'), "exactly one of"),
    "key-file-missing": (
        replace('license_key = "vgl_abc"', 'license_key_file = "missing"'),
        "cannot read 'license_key_file'",
    ),
    "empty-key": (replace('license_key = "vgl_abc"', 'license_key = ""'), "'license_key' is empty"),
    "key-with-space": (replace('"vgl_abc"', '"vgl abc"'), "white space"),
    "interval-too-short": (add("check_interval = 5"), "at least 60 seconds"),
    "health-check-not-strings": (replace('"bin/acme-erp --version"', "[1, 2]"), "list of strings"),
    "health-check-unbalanced-quote": (replace("--version", "'--version"), "cannot be split"),
    "bad-platform": (add('platform = "Linux x86"'), "must look like 'linux-x86_64'"),
    "bad-installed-version": (add('installed_version = "latest"'), "is not a version"),
    "same-dirs": (replace('state_dir = "state"', 'state_dir = "app"'), "must be different"),
    "unknown-key": (add('chanel = "beta"'), "unknown key 'chanel'"),
    "unknown-limit": (add("[limits]\nretries = 3"), "unknown limit 'limits.retries'"),
    "negative-limit": (add("[limits]\ndownload_attempts = -1"), "must be positive"),
    "limit-wrong-type": (add('[limits]\nnetwork_timeout = "5"'), "must be a number"),
    "jitter-too-large": (add("[limits]\ncheck_jitter = 1.5"), "below 1"),
    "not-toml": (add("this is not toml"), "not valid TOML"),
}


@pytest.mark.parametrize(("change", "message"), BAD.values(), ids=BAD.keys())
def test_bad_values_are_named(tmp_path: Path, change: Change, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(write(tmp_path, change(GOOD)))
    assert "\n" not in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "es_ES.UTF-8"}, "es-ES"),
        ({"LANG": "de_DE@euro"}, "de-DE"),
        ({"LC_ALL": "pt_BR.UTF-8", "LANG": "es_ES.UTF-8"}, "pt-BR"),
        ({"LC_MESSAGES": "fr_FR", "LANG": "es_ES"}, "fr-FR"),
        ({"LANG": "C.UTF-8"}, ""),
        ({"LANG": "POSIX"}, ""),
        ({}, ""),
    ],
)
def test_language_follows_the_posix_locale(environ: dict[str, str], language: str) -> None:
    from client_agent.config import locale_language

    assert locale_language(environ) == language


def test_language_setting_wins_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    assert load_config(write(tmp_path, GOOD)).language == "es-ES"
    assert load_config(write(tmp_path, GOOD + 'language = "en"\n')).language == "en"
    with pytest.raises(ConfigError, match="'language' must look like 'es' or 'es-ES'"):
        load_config(write(tmp_path, GOOD + 'language = "es; drop table"\n'))
