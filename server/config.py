"""Settings: the one place that reads the environment (``VIGOR_*`` variables).

Everything else receives a :class:`Settings`. Defaults make a local demo work with nothing set:
SQLite and local storage under ``instance/`` and ``releases/`` in the working directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from server.domain.branding import DEFAULT_VENDOR_NAME, Branding, brand_problems
from server.domain.errors import InvalidInputError
from server.domain.renewal_links import check_template
from server.domain.vocabulary import is_web_url

SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
"""The instance's own session and link-signing secret, written by ``vigor init``/``vigor demo``."""

MIN_SECRET_LENGTH = 32

# SHA-256 of secrets that were published (in earlier versions' source code): anyone can sign
# session cookies, download links and set-password links with them, so no server accepts them.
_PUBLIC_SECRET_DIGESTS = frozenset(
    {"bf0417ba01b33187e81b83fc07f19ba0f5ebbbf0fce526977e3974cafddcbe60"}
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` must not sign anything, or None when it is fit to."""
    if not secret:
        return "no secret key is configured"
    if hashlib.sha256(secret.encode()).hexdigest() in _PUBLIC_SECRET_DIGESTS:
        return "the secret key is a published value (the old demo secret)"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"the secret key is too short ({len(secret)} characters)"
    return None


def read_secret_file(instance_dir: Path) -> str:
    """The secret ``vigor init`` wrote to the instance directory, or "" when there is none."""
    try:
        return (instance_dir / SECRET_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read {instance_dir / SECRET_FILE}: {exc.strerror}") from None


def ensure_secret_file(instance_dir: Path) -> tuple[str, bool]:
    """The instance's secret, created (random, mode 0600, in a 0700 directory) if missing.

    Returns the secret and whether this call created it.
    """
    existing = read_secret_file(instance_dir)
    if existing:
        return existing, False
    ensure_private_dir(instance_dir)
    secret = secrets.token_urlsafe(48)
    path = instance_dir / SECRET_FILE
    tmp = path.with_name(f".{SECRET_FILE}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
        os.link(tmp, path)  # complete or absent, and never replaces another process's secret
    except FileExistsError:
        return read_secret_file(instance_dir), False
    finally:
        tmp.unlink(missing_ok=True)
    return secret, True


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` readable by its owner only (0700); an existing one is left as it is."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


DOWNLOAD_MODES = ("redirect", "stream", "accel")
_MAIL_ADDRESS = re.compile(r"\A[^@\s<>]+@[^@\s<>]+\Z")


def smtp_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name an SMTP server (``smtp://`` or ``smtps://``, a host, a port
    that is a number), or None when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"is not a URL: {url!r}"
    if parts.scheme not in {"smtp", "smtps"}:
        return f"must start with smtp:// or smtps://, not {parts.scheme or url!r}"
    if not parts.hostname:
        return "names no host"
    if port is not None and not 0 < port < 65536:
        return f"has no valid port: {port}"
    return None


@dataclass(frozen=True)
class Settings:
    """Everything Vigor can be configured with. Build with :meth:`from_env`."""

    instance_dir: Path = Path("instance")
    database_url: str = ""
    # Empty until ``vigor init`` writes the instance's secret file (or VIGOR_SECRET_KEY is set):
    # a process that serves or signs refuses to start without a strong one.
    secret_key: str = ""
    production: bool = False
    public_base_url: str = "http://127.0.0.1:8000"
    # Storage
    storage_backend: str = "local"  # local | s3
    storage_root: Path = Path("releases")
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    # How artifact bytes reach a client (docs/storage.md): "redirect" to a presigned S3 URL
    # (local storage: served here), "stream" through this process (for clients that reach only
    # Vigor's host), or "accel": X-Accel-Redirect to nginx's internal location below.
    downloads: str = "redirect"
    accel_location: str = "/_vigor_blobs/"
    # Trust: online release/check keys live here; root keys belong offline.
    keys_dir: Path = Path("instance/keys")
    key_passphrase: str | None = None
    # Limits
    max_upload_bytes: int = 8 * 1024**3  # one artifact, streamed
    max_request_bytes: int = 1024 * 1024  # every non-upload route
    download_url_ttl: int = 15 * 60  # seconds a download link from /check stays valid
    s3_presign_seconds: int = 300  # a presigned S3 redirect (a bearer link) lives this long
    check_response_ttl: int = 60 * 60  # seconds a signed check response stays fresh
    installation_touch_interval: int = 60 * 60  # at most one DB write per installation per hour
    rollout_failure_threshold: float = 0.2  # share of failed reports that halts a rollout
    rollout_failure_min_reports: int = 5
    # Delta patches to each new release: from this many earlier releases, and from the versions
    # installations run (server/domain/patches.py); one patch may take this many seconds.
    patch_from_releases: int = 1
    patch_time_limit: int = 120
    # Background jobs (server/jobs, docs/worker.md): the queue that carries job ids to workers is
    # a SQLite file in the instance directory unless a Redis URL is given (several hosts).
    queue_url: str = ""
    job_max_attempts: int = 5  # a failing job is tried this many times, then marked failed
    job_retry_seconds: int = 30  # the wait before the 2nd try, doubled for each try after
    job_lease_seconds: int = 60  # a claimed job returns to the queue this long after its
    # worker's last sign of life (the worker renews it while the job runs)
    # Webhooks (docs/webhooks.md). A delivery is tried ``webhook_max_attempts`` times, waiting
    # ``webhook_retry_seconds`` before the 2nd try and doubling (5 s … about 11 h: some 23 h in
    # all); an endpoint failing that long and that often is disabled. Private and loopback
    # addresses are refused unless allowed (a webhook must not reach into the server's network).
    webhook_timeout_seconds: int = 10
    webhook_max_attempts: int = 14
    webhook_retry_seconds: int = 5
    webhook_disable_after_failures: int = 20
    webhook_disable_after_hours: int = 72
    webhook_allow_private: bool = False
    contract_expiring_days: int = 30  # contract.expiring fires this many days before the end
    # Rate limits ("120/minute", several joined by ";"), counted in the database unless a storage
    # URL is given (redis://..., or memory:// for one process). README.md, "Rate limits".
    rate_limit_check: str = "120/minute"  # checks and reports per license
    # Checks per client address: a customer's office behind one NAT shares it, so it is far
    # looser than the per-license limit (which bounds each installation's license already).
    rate_limit_check_address: str = "1200/minute"
    rate_limit_storage_url: str = ""
    rate_limit_login: str = "10/minute"  # sign-in attempts per client address
    rate_limit_login_account: str = "5/minute;20/hour"  # sign-in attempts per account named
    trust_proxy_hops: int = 0  # ProxyFix only when configured
    renewal_url: str = "https://vendor.example/renew"
    # E-mail (docs/email.md), sent by the worker only: smtp://user:pass@host:587 (STARTTLS),
    # smtps://user:pass@host:465 (TLS from the start), smtp://host:25 (plain: a local relay or
    # catcher). "" sends nothing: e-mails wait in the outbox.
    smtp_url: str = ""
    mail_from: str = "vigor@localhost"
    mail_reply_to: str = ""
    # The vendor's brand in the portal (server/domain/branding.py checks it): its name in the
    # header, footer, page titles (and e-mails); a logo (an http(s) URL or a path on this site);
    # a primary colour (hex, dark enough for white text); where customers get help.
    vendor_name: str = DEFAULT_VENDOR_NAME
    vendor_logo_url: str = ""
    vendor_colour: str = ""
    support_email: str = ""
    support_url: str = ""
    # Serving (``vigor serve``; docs/operations.md says why these numbers)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2  # processes
    threads: int = 8  # requests each process serves at once (an upload holds one)
    timeout: int = 60  # seconds a silent worker lives: its heartbeat, not a request's duration
    # Seconds in-flight requests get to finish on SIGTERM (a deploy): a 2 GiB upload that has
    # just begun needs 2 GiB / 600 s = 3.4 MiB/s (about 29 Mbit/s) to finish within them.
    graceful_timeout: int = 600
    # One listening socket per worker, the kernel spreading connections over them: on one shared
    # socket, kept-alive connections opened at once fall unevenly (25/39, 50/14, 64/0 seen), and
    # the busier worker queues checks at its one core's limit while the other idles.
    reuse_port: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database_url:
            db_path = (self.instance_dir / "vigor.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite:///{db_path}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``VIGOR_*`` variables; raise ``ConfigError`` naming the first bad one."""
        env = os.environ if env is None else env
        instance_dir = Path(env.get("VIGOR_INSTANCE_DIR", "instance"))
        backend = env.get("VIGOR_STORAGE", "local").strip().lower()
        if backend not in {"local", "s3"}:
            raise ConfigError(f"VIGOR_STORAGE must be 'local' or 's3', not {backend!r}")
        downloads = env.get("VIGOR_DOWNLOADS", "redirect").strip().lower()
        if downloads not in DOWNLOAD_MODES:
            raise ConfigError(
                f"VIGOR_DOWNLOADS must be one of {', '.join(DOWNLOAD_MODES)}, not {downloads!r}"
            )
        accel = "/" + env.get("VIGOR_ACCEL_LOCATION", "/_vigor_blobs/").strip("/") + "/"
        settings = cls(
            instance_dir=instance_dir,
            database_url=env.get("VIGOR_DATABASE_URL", ""),
            secret_key=env.get("VIGOR_SECRET_KEY") or read_secret_file(instance_dir),
            production=_bool(env, "VIGOR_PRODUCTION", False),
            public_base_url=env.get("VIGOR_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            storage_backend=backend,
            storage_root=Path(env.get("VIGOR_STORAGE_ROOT", "releases")),
            s3_bucket=env.get("VIGOR_S3_BUCKET", ""),
            s3_prefix=env.get("VIGOR_S3_PREFIX", ""),
            s3_region=env.get("VIGOR_S3_REGION") or None,
            s3_endpoint_url=env.get("VIGOR_S3_ENDPOINT_URL") or None,
            s3_access_key=env.get("VIGOR_S3_ACCESS_KEY_ID") or None,
            s3_secret_key=env.get("VIGOR_S3_SECRET_ACCESS_KEY") or None,
            downloads=downloads,
            accel_location=accel,
            keys_dir=Path(env.get("VIGOR_KEYS_DIR", str(instance_dir / "keys"))),
            key_passphrase=env.get("VIGOR_KEY_PASSPHRASE") or None,
            max_upload_bytes=_int(env, "VIGOR_MAX_UPLOAD_BYTES", 8 * 1024**3, minimum=1),
            download_url_ttl=_int(env, "VIGOR_DOWNLOAD_URL_TTL", 15 * 60, minimum=10),
            s3_presign_seconds=_int(env, "VIGOR_S3_PRESIGN_SECONDS", 300, minimum=10),
            check_response_ttl=_int(env, "VIGOR_CHECK_RESPONSE_TTL", 60 * 60, minimum=60),
            rate_limit_check=env.get("VIGOR_RATE_LIMIT_CHECK", "120/minute"),
            rate_limit_check_address=env.get("VIGOR_RATE_LIMIT_CHECK_ADDRESS", "1200/minute"),
            rate_limit_storage_url=env.get("VIGOR_RATE_LIMIT_STORAGE_URL", "").strip(),
            rate_limit_login=env.get("VIGOR_RATE_LIMIT_LOGIN", "10/minute"),
            rate_limit_login_account=env.get("VIGOR_RATE_LIMIT_LOGIN_ACCOUNT", "5/minute;20/hour"),
            trust_proxy_hops=_int(env, "VIGOR_TRUST_PROXY_HOPS", 0),
            patch_from_releases=_int(env, "VIGOR_PATCH_FROM_RELEASES", 1),
            patch_time_limit=_int(env, "VIGOR_PATCH_TIME_LIMIT", 120, minimum=1),
            queue_url=env.get("VIGOR_QUEUE_URL", "").strip(),
            job_max_attempts=_int(env, "VIGOR_JOB_MAX_ATTEMPTS", 5, minimum=1),
            job_retry_seconds=_int(env, "VIGOR_JOB_RETRY_SECONDS", 30, minimum=1),
            job_lease_seconds=_int(env, "VIGOR_JOB_LEASE_SECONDS", 60, minimum=2),
            webhook_timeout_seconds=_int(env, "VIGOR_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1),
            webhook_max_attempts=_int(env, "VIGOR_WEBHOOK_MAX_ATTEMPTS", 14, minimum=1),
            webhook_retry_seconds=_int(env, "VIGOR_WEBHOOK_RETRY_SECONDS", 5, minimum=1),
            webhook_disable_after_failures=_int(
                env, "VIGOR_WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1
            ),
            webhook_disable_after_hours=_int(env, "VIGOR_WEBHOOK_DISABLE_AFTER_HOURS", 72),
            webhook_allow_private=_bool(env, "VIGOR_WEBHOOK_ALLOW_PRIVATE", False),
            contract_expiring_days=_int(env, "VIGOR_CONTRACT_EXPIRING_DAYS", 30, minimum=1),
            renewal_url=env.get("VIGOR_RENEWAL_URL", "https://vendor.example/renew"),
            smtp_url=env.get("VIGOR_SMTP_URL", "").strip(),
            mail_from=env.get("VIGOR_MAIL_FROM", "vigor@localhost").strip(),
            mail_reply_to=env.get("VIGOR_MAIL_REPLY_TO", "").strip(),
            vendor_name=env.get("VIGOR_VENDOR_NAME", DEFAULT_VENDOR_NAME).strip(),
            vendor_logo_url=env.get("VIGOR_VENDOR_LOGO_URL", "").strip(),
            vendor_colour=env.get("VIGOR_VENDOR_COLOR", "").strip(),
            support_email=env.get("VIGOR_SUPPORT_EMAIL", "").strip(),
            support_url=env.get("VIGOR_SUPPORT_URL", "").strip(),
            host=env.get("VIGOR_HOST", "127.0.0.1"),
            port=_int(env, "VIGOR_PORT", 8000, minimum=1),
            workers=_int(env, "VIGOR_WORKERS", 2, minimum=1),
            threads=_int(env, "VIGOR_THREADS", 8, minimum=1),
            timeout=_int(env, "VIGOR_TIMEOUT", 60, minimum=1),
            graceful_timeout=_int(env, "VIGOR_GRACEFUL_TIMEOUT", 600, minimum=0),
            reuse_port=_bool(env, "VIGOR_REUSE_PORT", True),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse combinations that cannot work or are unsafe."""
        if self.queue_url and not self.queue_url.startswith(("redis://", "rediss://")):
            raise ConfigError(
                f"VIGOR_QUEUE_URL must be a redis:// or rediss:// URL, not {self.queue_url!r}"
            )
        if self.smtp_url:
            problem = smtp_url_problem(self.smtp_url)
            if problem:
                raise ConfigError(f"VIGOR_SMTP_URL {problem}")
        for variable, address in (
            ("VIGOR_MAIL_FROM", self.mail_from),
            ("VIGOR_MAIL_REPLY_TO", self.mail_reply_to),
        ):
            if address and not _MAIL_ADDRESS.match(address):
                raise ConfigError(f"{variable} must be an e-mail address, not {address!r}")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ConfigError("VIGOR_S3_BUCKET is required when VIGOR_STORAGE=s3")
        for name, limit in (
            ("VIGOR_RATE_LIMIT_CHECK", self.rate_limit_check),
            ("VIGOR_RATE_LIMIT_CHECK_ADDRESS", self.rate_limit_check_address),
            ("VIGOR_RATE_LIMIT_LOGIN", self.rate_limit_login),
            ("VIGOR_RATE_LIMIT_LOGIN_ACCOUNT", self.rate_limit_login_account),
        ):
            try:
                parse_many(limit)
            except ValueError:
                raise ConfigError(
                    f"{name} must be limits such as '10/minute' or '5/minute;20/hour', "
                    f"not {limit!r}"
                ) from None
        if not is_web_url(self.public_base_url):
            raise ConfigError(
                f"VIGOR_PUBLIC_URL must be an http:// or https:// URL, not {self.public_base_url!r}"
            )
        try:
            check_template(self.renewal_url, "VIGOR_RENEWAL_URL")
        except InvalidInputError as exc:
            raise ConfigError(exc.message) from None
        variables = {
            "vendor_name": "VIGOR_VENDOR_NAME",
            "logo_url": "VIGOR_VENDOR_LOGO_URL",
            "colour": "VIGOR_VENDOR_COLOR",
            "support_email": "VIGOR_SUPPORT_EMAIL",
            "support_url": "VIGOR_SUPPORT_URL",
        }
        for name, problem in brand_problems(self.branding):
            raise ConfigError(f"{variables[name]} {problem}")
        if self.production:
            self.require_secret()
            if not self.public_base_url.startswith("https://"):
                raise ConfigError("VIGOR_PUBLIC_URL must be an https:// URL in production")

    def require_secret(self) -> str:
        """The secret that signs sessions and links; ``ConfigError`` (one line) when it is
        missing, shorter than :data:`MIN_SECRET_LENGTH` or a value known to the public."""
        problem = secret_problem(self.secret_key)
        if problem:
            raise ConfigError(
                f"{problem}: set VIGOR_SECRET_KEY to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters, or run `vigor init` to write one to "
                f"{self.instance_dir / SECRET_FILE}"
            )
        return self.secret_key

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the demo use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def branding(self) -> Branding:
        """The vendor's brand as the portal shows it."""
        return Branding(
            vendor_name=self.vendor_name,
            logo_url=self.vendor_logo_url,
            colour=self.vendor_colour,
            support_email=self.support_email,
            support_url=self.support_url,
        )

    @property
    def queue_file(self) -> Path:
        """The embedded queue's SQLite file (when no VIGOR_QUEUE_URL is set)."""
        return self.instance_dir / "queue.sqlite3"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
