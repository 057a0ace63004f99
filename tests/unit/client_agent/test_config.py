"""Every bad configuration value gets one readable line naming it."""

from __future__ import annotations

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
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_resolves_paths_against_its_own_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.server_url == "https://updates.example.com"
    assert config.install_dir == tmp_path / "app"
    assert config.trusted_root == tmp_path / "root.json"
    assert config.health_check == ("bin/acme-erp", "--version")
    assert config.platform == detect_platform()
    assert config.channel == "stable"


def test_license_key_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("vgl_from_file\n")
    config = load_config(
        write(tmp_path, GOOD.replace('license_key = "vgl_abc"', 'license_key_file = "key"'))
    )
    assert config.license_key == "vgl_from_file"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('product = "acme-erp"\n', ""), "'product' is required"),
        (
            lambda t: t.replace('"https://updates.example.com/"', '"ftp://x"'),
            "must be an http(s) URL",
        ),
        (lambda t: t.replace('product = "acme-erp"', "product = 7"), "'product' must be a str"),
        (lambda t: t + 'license_key_file = "k"\n', "exactly one of"),
        (
            lambda t: t.replace('license_key = "vgl_abc"', 'license_key_file = "missing"'),
            "cannot read",
        ),
        (
            lambda t: t.replace('license_key = "vgl_abc"', 'license_key = ""'),
            "license key is empty",
        ),
        (lambda t: t + "check_interval = 5\n", "at least 60 seconds"),
        (lambda t: t.replace("health_check = ", "health_check = [1, 2] #"), "list of strings"),
        (lambda t: t + "this is not toml", "not valid TOML"),
    ],
    ids=[
        "missing-product",
        "bad-url",
        "wrong-type",
        "two-keys",
        "key-file-missing",
        "empty-key",
        "interval-too-short",
        "health-check-not-strings",
        "not-toml",
    ],
)
def test_bad_values_are_named(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, change(GOOD)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
