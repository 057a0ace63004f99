"""Agent configuration from a TOML file, with a readable error for every bad value."""

from __future__ import annotations

import os
import platform as _platform
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from client_agent.errors import ConfigError

_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
_SYSTEMS = {"Linux": "linux", "Windows": "windows", "Darwin": "macos", "FreeBSD": "freebsd"}


def detect_platform() -> str:
    """``os-arch`` of this machine, e.g. ``linux-x86_64``."""
    system = _SYSTEMS.get(_platform.system(), _platform.system().lower())
    machine = _MACHINES.get(_platform.machine().lower(), _platform.machine().lower())
    return f"{system}-{machine}"


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent is told, plus the limits it keeps."""

    server_url: str
    license_key: str
    product: str
    install_dir: Path
    state_dir: Path
    trusted_root: Path
    channel: str = "stable"
    platform: str = ""
    health_check: tuple[str, ...] = ()
    proxy: str | None = None
    check_interval: int = 6 * 3600  # seconds between checks in `run`, before jitter
    installed_version: str | None = None  # bootstrap: what the installer put in place
    # Limits (why: a hostile or broken server must not hang or fill the machine)
    connect_timeout: float = 10.0  # seconds per connection attempt
    read_timeout: float = 60.0  # seconds without a byte before a read fails
    download_attempts: int = 5  # tries per download, resuming each time
    download_total_seconds: float = 3600.0  # a download gives up after this long overall
    max_document_bytes: int = 4 * 1024 * 1024  # largest JSON document accepted (root, check)
    max_root_walk: int = 1000  # root versions walked in one update of trust
    health_check_seconds: float = 120.0  # the health check must finish within this
    free_space_margin: int = 16 * 1024 * 1024  # bytes kept free beyond what a download needs

    def __post_init__(self) -> None:
        if not self.platform:
            object.__setattr__(self, "platform", detect_platform())


def _require(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise ConfigError(f"config: '{name}' is required")
    value = data[name]
    if not isinstance(value, kind):
        wanted = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(f"config: '{name}' must be a {wanted}, not {type(value).__name__}")
    return value


def _optional(data: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    if name not in data:
        return default
    return _require(data, name, kind)


def _path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def load_config(path: Path) -> AgentConfig:
    """Read ``path``; relative paths in it are relative to the file's directory."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    server_url = _require(data, "server_url", str).rstrip("/")
    parts = urlsplit(server_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"config: 'server_url' must be an http(s) URL, not {server_url!r}")
    key = _optional(data, "license_key", str, None)
    key_file = _optional(data, "license_key_file", str, None)
    if (key is None) == (key_file is None):
        raise ConfigError("config: give exactly one of 'license_key' or 'license_key_file'")
    if key_file is not None:
        try:
            key = _path(base, key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"config: cannot read 'license_key_file' {key_file}: {exc.strerror}"
            ) from None
    if not key:
        raise ConfigError("config: the license key is empty")
    health = _optional(data, "health_check", (str, list), [])
    if isinstance(health, str):
        health = shlex.split(health)
    if not all(isinstance(part, str) for part in health):
        raise ConfigError("config: 'health_check' must be a command string or a list of strings")
    interval = _optional(data, "check_interval", int, 6 * 3600)
    if interval < 60:
        raise ConfigError("config: 'check_interval' must be at least 60 seconds")
    installed = _optional(data, "installed_version", str, None)
    return AgentConfig(
        server_url=server_url,
        license_key=key,
        product=_require(data, "product", str),
        install_dir=_path(base, _require(data, "install_dir", str)),
        state_dir=_path(base, _require(data, "state_dir", str)),
        trusted_root=_path(base, _require(data, "trusted_root", str)),
        channel=_optional(data, "channel", str, "stable"),
        platform=_optional(data, "platform", str, ""),
        health_check=tuple(health),
        proxy=_optional(data, "proxy", str, None),
        check_interval=interval,
        installed_version=installed,
    )
