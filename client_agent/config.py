"""Agent configuration from a TOML file, with a one-line error naming every bad value."""

from __future__ import annotations

import os
import platform as _platform
import re
import shlex
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version

from client_agent.errors import ConfigError

__all__ = [
    "LIMITS",
    "AgentConfig",
    "detect_platform",
    "load_config",
    "parse_config",
]

_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
_SYSTEMS = {"Linux": "linux", "Windows": "windows", "Darwin": "macos", "FreeBSD": "freebsd"}
_PLATFORM = re.compile(r"^(any|[a-z0-9]+-[a-z0-9_]+)$")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def locale_language(environ: Any) -> str:
    """The user's language from the POSIX locale variables (``es_ES.UTF-8`` -> ``es-ES``);
    empty for the ``C``/``POSIX`` locale or none."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name) or ""
        if value:
            tag = value.split(".", 1)[0].split("@", 1)[0].replace("_", "-")
            return tag if _LANGUAGE.match(tag) else ""
    return ""


def detect_platform() -> str:
    """``os-arch`` of this machine, e.g. ``linux-x86_64``."""
    system = _SYSTEMS.get(_platform.system(), _platform.system().lower())
    machine = _MACHINES.get(_platform.machine().lower(), _platform.machine().lower())
    return f"{system}-{machine}"


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent is told, plus the limits it keeps.

    The limits exist because a hostile or broken server must not hang the agent, fill the disk
    or make it walk forever; each can be changed in the ``[limits]`` table of the file.
    """

    server_url: str
    license_key: str
    product: str
    install_dir: Path
    state_dir: Path
    trusted_root: Path
    channel: str = "stable"
    platform: str = ""  # empty: detected (detect_platform)
    health_check: tuple[str, ...] = ()  # run in the new version's directory; non-zero = roll back
    proxy: str | None = None  # replaces HTTPS_PROXY/HTTP_PROXY; NO_PROXY still applies
    check_interval: int = 6 * 3600  # seconds between checks in `run`, before jitter
    installed_version: str | None = None  # bootstrap: what the installer put in place
    language: str = ""  # for the server's messages, e.g. "es"; empty: from LANG / LC_*
    # ----------------------------------------------------------------- limits
    network_timeout: float = 30.0  # seconds a connection attempt or a silent read may take
    download_attempts: int = 5  # tries per download, each resuming where the last stopped
    first_backoff_seconds: float = 0.5  # wait before the 2nd try; doubles, at most 30 s
    download_total_seconds: float = 3600.0  # a download gives up after this long overall ...
    download_min_rate: float = 32768.0  # ... or size / this (bytes/s), when that is longer
    download_stall_seconds: float = 60.0  # < min_rate × this many bytes in this long: stalled
    document_seconds: float = 120.0  # a root, check answer or report answer arrives whole in this
    max_document_bytes: int = 4 * 1024 * 1024  # largest JSON document accepted (root, check)
    max_root_walk: int = 1000  # root versions walked in one update of trust (a loop guard)
    health_check_seconds: float = 120.0  # the health check must finish within this
    free_space_margin: int = 64 * 1024 * 1024  # bytes left free beyond a download or an install
    max_expansion_ratio: float = 100.0  # unpacked bytes per archive byte (over at least 1 MiB)
    max_unpacked_bytes: int = 16 * 1024**3  # the most a release may unpack to
    max_pending_reports: int = 100  # undelivered reports kept; the oldest are dropped first
    check_jitter: float = 0.1  # `run` waits check_interval ± this fraction, spreading the load

    def __post_init__(self) -> None:
        if not self.platform:
            object.__setattr__(self, "platform", detect_platform())


# The limits a file may set, and their types (bool is refused even though it is an int).
LIMITS: dict[str, type] = {
    "network_timeout": float,
    "download_attempts": int,
    "first_backoff_seconds": float,
    "download_total_seconds": float,
    "download_min_rate": float,
    "download_stall_seconds": float,
    "document_seconds": float,
    "max_document_bytes": int,
    "max_root_walk": int,
    "health_check_seconds": float,
    "free_space_margin": int,
    "max_expansion_ratio": float,
    "max_unpacked_bytes": int,
    "max_pending_reports": int,
    "check_jitter": float,
}
_KNOWN = {
    "server_url",
    "license_key",
    "license_key_file",
    "product",
    "channel",
    "platform",
    "install_dir",
    "state_dir",
    "trusted_root",
    "health_check",
    "proxy",
    "check_interval",
    "installed_version",
    "language",
    "limits",
}


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "list": "a list",
        "dict": "a table",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def _value(table: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int):
        value = float(value)  # `timeout = 30` means 30.0
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(
            f"config: '{where}{name}' must be {_type_name(kind)}, not {type(value).__name__} "
            f"({value!r})"
        )
    return value


def _require(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in data:
        raise ConfigError(f"config: '{name}' is required")
    value = _value(data, name, kind, "")
    if isinstance(value, str) and not value.strip():
        raise ConfigError(f"config: '{name}' is empty")
    return value


def _optional(data: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    return _require(data, name, kind) if name in data else default


def _path(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"config: '{name}' must be an http(s) URL, not {value!r}")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise ConfigError(f"config: '{name}' has a bad port: {value!r}") from None
    return value.rstrip("/")


def _license_key(data: dict[str, Any], base: Path) -> str:
    key = _optional(data, "license_key", str, None)
    key_file = _optional(data, "license_key_file", str, None)
    if (key is None) == (key_file is None):
        raise ConfigError("config: give exactly one of 'license_key' or 'license_key_file'")
    if key_file is not None:
        path = _path(base, key_file)
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"config: cannot read 'license_key_file' {path}: {exc.strerror}"
            ) from None
        if not key:
            raise ConfigError(f"config: 'license_key_file' {path} is empty")
    if any(ch.isspace() for ch in key):
        raise ConfigError("config: the license key contains white space")
    return str(key)


def _health_check(data: dict[str, Any]) -> tuple[str, ...]:
    health = _optional(data, "health_check", (str, list), [])
    if isinstance(health, str):
        try:
            health = shlex.split(health)
        except ValueError as exc:
            raise ConfigError(f"config: 'health_check' cannot be split into words: {exc}") from None
    if not all(isinstance(part, str) and part for part in health):
        raise ConfigError("config: 'health_check' must be a command string or a list of strings")
    return tuple(health)


def _limits(data: dict[str, Any]) -> dict[str, Any]:
    table = _optional(data, "limits", dict, {})
    limits: dict[str, Any] = {}
    for name in table:
        if name not in LIMITS:
            raise ConfigError(
                f"config: unknown limit 'limits.{name}' (known: {', '.join(sorted(LIMITS))})"
            )
        value = _value(table, name, LIMITS[name], "limits.")
        if value < 0 or (value == 0 and name != "free_space_margin"):
            raise ConfigError(f"config: 'limits.{name}' must be positive")
        limits[name] = value
    if limits.get("check_jitter", 0) >= 1:
        raise ConfigError("config: 'limits.check_jitter' must be below 1 (a fraction)")
    return limits


def parse_config(data: dict[str, Any], base: Path) -> AgentConfig:
    """An ``AgentConfig`` from parsed TOML; relative paths are resolved against ``base``."""
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"config: unknown key '{unknown[0]}' (known: {', '.join(sorted(_KNOWN))})"
        )
    server_url = _http_url("server_url", _require(data, "server_url", str))
    product = _require(data, "product", str)
    channel = _optional(data, "channel", str, "stable")
    for name, value in (("product", product), ("channel", channel)):
        if not _SLUG.match(value):
            raise ConfigError(f"config: '{name}' has characters a slug cannot: {value!r}")
    platform = _optional(data, "platform", str, "")
    if platform and not _PLATFORM.match(platform):
        raise ConfigError(f"config: 'platform' must look like 'linux-x86_64', not {platform!r}")
    proxy = _optional(data, "proxy", str, None)
    interval = _optional(data, "check_interval", int, 6 * 3600)
    if interval < 60:
        raise ConfigError("config: 'check_interval' must be at least 60 seconds")
    installed = _optional(data, "installed_version", str, None)
    if installed is not None:
        try:
            Version(installed)
        except InvalidVersion:
            raise ConfigError(
                f"config: 'installed_version' {installed!r} is not a version"
            ) from None
    language = _optional(data, "language", str, "") or locale_language(os.environ)
    if language and not _LANGUAGE.match(language):
        raise ConfigError(f"config: 'language' must look like 'es' or 'es-ES', not {language!r}")
    config = AgentConfig(
        server_url=server_url,
        license_key=_license_key(data, base),
        product=product,
        install_dir=_path(base, _require(data, "install_dir", str)),
        state_dir=_path(base, _require(data, "state_dir", str)),
        trusted_root=_path(base, _require(data, "trusted_root", str)),
        channel=channel,
        platform=platform,
        health_check=_health_check(data),
        proxy=_http_url("proxy", proxy) if proxy is not None else None,
        check_interval=interval,
        installed_version=installed,
        language=language,
    )
    if config.install_dir == config.state_dir:
        raise ConfigError("config: 'install_dir' and 'state_dir' must be different directories")
    return replace(config, **_limits(data))


def load_config(path: Path) -> AgentConfig:
    """Read the TOML file at ``path``; relative paths in it are relative to its directory.

    Raises:
        ConfigError: naming the file or the value that is wrong.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_config(data, path.resolve().parent)
