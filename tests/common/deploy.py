"""The production recipe in ``deploy/``, run for real: what tests/e2e/test_deploy.py and
bench/soak.py serve.

A :class:`Site` renders the ``@PLACEHOLDER@``s of the shipped files (docs/deploy.md lists them),
reads the environment file as systemd would, runs the commands the units' ``ExecStart`` lines
name (``vigor serve`` per port, ``vigor worker``) with that environment and nothing else of the
caller's, and starts nginx with ``deploy/nginx/vigor.conf`` over TLS as an unprivileged process
with its own prefix, pid, temporary and log paths on free ports. Only the few lines of nginx's
main configuration (``nginx.conf``, which a Debian host already has) are the harness's own.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.common.live import ROOT, free_port

DEPLOY = ROOT / "deploy"
PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
# Where the serving processes say they can take traffic (branch ops brings /readyz).
READY_PATH = "/readyz"
UNPRIVILEGED = ("nobody", "nogroup")  # who nginx runs as when the tests run as root


def find_nginx() -> str:
    """The nginx binary (Debian's is in /usr/sbin, outside a user's PATH)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError("nginx not found: apt-get install nginx (scripts/system-deps)")
    return found


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``@NAME@`` replaced; ``KeyError`` naming one that has no value."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for the placeholder @{name}@")
        return values[name]

    return PLACEHOLDER.sub(value, text)


def read_environment_file(text: str) -> dict[str, str]:
    """Variables of a systemd ``EnvironmentFile`` (``KEY=value`` lines; ``#``/``;`` comments)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=value: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


@dataclass
class Unit:
    """The ``[Service]`` settings of a systemd unit file that say what runs, where, with what."""

    settings: dict[str, list[str]]

    @classmethod
    def parse(cls, text: str) -> Unit:
        settings: dict[str, list[str]] = {}
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service":
                key, _, value = line.partition("=")
                settings.setdefault(key.strip(), []).append(value.strip())
        return cls(settings)

    def one(self, key: str) -> str:
        (value,) = self.settings[key]
        return value

    def command(self, instance: str, env: dict[str, str]) -> list[str]:
        """``ExecStart`` as systemd runs it: ``%i`` is the instance, ``${VAR}`` from ``env``."""
        words = shlex.split(self.one("ExecStart").replace("%i", instance))
        return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word) for word in words]

    def runtime(self, instance: str, runtime_root: Path) -> dict[str, str]:
        """Make the unit's ``RuntimeDirectory`` under ``runtime_root`` (systemd's ``%t``, /run)
        and return its ``Environment=`` variables."""
        for name in self.settings.get("RuntimeDirectory", []):
            (runtime_root / name.replace("%i", instance)).mkdir(mode=0o700, exist_ok=True)
        env = {}
        for line in self.settings.get("Environment", []):
            for word in shlex.split(line.replace("%i", instance).replace("%t", str(runtime_root))):
                key, _, value = word.partition("=")
                env[key] = value
        return env


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


NGINX_MAIN = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    include {dir}/conf.d/vigor.conf;
}}
"""


def start_nginx(directory: Path, values: dict[str, str]) -> subprocess.Popen[bytes]:
    """nginx running ``deploy/nginx/vigor.conf`` and its snippet rendered with ``values``, with
    ``directory`` as its prefix (logs, temp files), as an unprivileged user when run as root.
    Returns at once: the caller waits for it to answer."""
    (directory / "conf.d").mkdir()
    (directory / "snippets").mkdir()
    (directory / "tmp").mkdir()
    (directory / "conf.d" / "vigor.conf").write_text(
        render((DEPLOY / "nginx/vigor.conf").read_text(), values)
    )
    (directory / "snippets" / "vigor-accel.conf").write_text(
        render((DEPLOY / "nginx/vigor-accel.conf").read_text(), values)
    )
    (directory / "nginx.conf").write_text(NGINX_MAIN.format(dir=directory))
    command = [find_nginx(), "-p", str(directory), "-c", str(directory / "nginx.conf")]
    command += ["-e", str(directory / "error.log")]
    user: dict[str, str] = {}
    if os.geteuid() == 0:
        account = pwd.getpwnam(UNPRIVILEGED[0])
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)
        user = {"user": UNPRIVILEGED[0], "group": UNPRIVILEGED[1]}
    tested = subprocess.run(
        [*command, "-t", "-q"], capture_output=True, text=True, check=False, **user
    )
    assert tested.returncode == 0, tested.stderr + _tail(directory / "error.log")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **user)


@dataclass
class Backing:
    """The services a site shares: a PostgreSQL database, an S3 bucket, a Redis."""

    database_url: str
    s3_endpoint: str
    s3_bucket: str
    s3_region: str
    s3_access_key: str
    s3_secret_key: str
    redis_url: str


@dataclass
class Site:
    """A Vigor site as docs/deploy.md sets it up, in ``base`` (the host's ``VIGOR_HOME``)."""

    base: Path
    backing: Backing
    # Settings changed after the environment file's (a load test's rate limits), or nothing.
    overrides: dict[str, str] = field(default_factory=dict)
    vigor_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.home = self.base / "home"
        self.home.mkdir(parents=True)
        self.logs = self.base / "logs"
        self.logs.mkdir()
        self.public_url = f"https://localhost:{self.https_port}"
        # nginx's own directory: in /tmp, so that an unprivileged nginx can reach it.
        self.nginx_dir = Path(tempfile.mkdtemp(prefix="vigor-nginx-"))
        self.certificate, certificate_key = self_signed_certificate(self.nginx_dir)
        venv = Path(sys.executable).parent.parent
        b = self.backing
        self.values = {
            "SERVER_NAME": "localhost",
            "PUBLIC_URL": self.public_url,
            "HTTPS_PORT": str(self.https_port),
            "HTTP_PORT": str(self.http_port),
            "TLS_CERTIFICATE": str(self.certificate),
            "TLS_CERTIFICATE_KEY": str(certificate_key),
            "VIGOR_PORT_1": str(self.vigor_ports[0]),
            "VIGOR_PORT_2": str(self.vigor_ports[1]),
            "VIGOR_HOME": str(self.home),
            "VIGOR_VENV": str(venv),
            "VIGOR_STORAGE_ROOT": str(self.home / "releases"),
            "DNS_RESOLVER": "127.0.0.1",
            "RENEWAL_URL": "https://vendor.example/renew",
            "DATABASE_URL": b.database_url,
            "S3_ENDPOINT": b.s3_endpoint,
            "S3_BUCKET": b.s3_bucket,
            "S3_REGION": b.s3_region,
            "REDIS_URL": b.redis_url,
        }
        # As systemd gives it: the environment files' variables and a bare minimum, nothing of
        # the test run's own environment (no VIGOR_* leaks in).
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        self.env["HOME"] = str(self.home)
        self.env.update(read_environment_file(self.rendered("vigor.env.example")))
        self.env.update(
            {  # /etc/vigor/secrets.env, as docs/deploy.md has the operator write it
                "VIGOR_SECRET_KEY": secrets.token_urlsafe(48),
                "VIGOR_S3_ACCESS_KEY_ID": b.s3_access_key,
                "VIGOR_S3_SECRET_ACCESS_KEY": b.s3_secret_key,
            }
        )
        self.env.update(self.overrides)
        self.serve_unit = Unit.parse(self.rendered("systemd/vigor@.service"))
        self.worker_unit = Unit.parse(self.rendered("systemd/vigor-worker.service"))
        for unit in (self.serve_unit, self.worker_unit):
            assert unit.settings["EnvironmentFile"] == [
                "/etc/vigor/vigor.env",
                "-/etc/vigor/secrets.env",
            ]
        assert self.serve_unit.one("WorkingDirectory") == str(self.home)

    def rendered(self, name: str) -> str:
        return render((DEPLOY / name).read_text(), self.values)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))

    # --- the vigor command and processes ----------------------------------------------------

    def vigor(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A ``vigor`` command as the operator runs it on the host (the venv's, the env file's)."""
        executable = self.serve_unit.command("0", self.env)[0]
        return subprocess.run(
            [executable, *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def log_of(self, name: str) -> Path:
        """The output of the latest start of process ``name`` (a port, or ``worker``)."""
        return self.logs / f"{name}.{self.starts.get(name, 0)}.log"

    def _spawn(self, name: str, unit: Unit, instance: str) -> subprocess.Popen[bytes]:
        self.starts[name] = self.starts.get(name, 0) + 1
        runtime_root = self.base / "run"
        runtime_root.mkdir(exist_ok=True)
        env = {**self.env, **unit.runtime(instance, runtime_root)}
        command = unit.command(instance, env)
        with self.log_of(name).open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=self.home, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.processes[name] = proc
        return proc

    def start_serving(self, port: int) -> None:
        """``vigor@PORT.service``'s ExecStart; returns once the process answers READY_PATH."""
        proc = self._spawn(str(port), self.serve_unit, str(port))
        wait_for(
            f"http://127.0.0.1:{port}{READY_PATH}",
            proc,
            self.log_of(str(port)),
        )

    def stop_serving(self, port: int, sig: int = signal.SIGTERM) -> int:
        """Signal the process as systemd stops it (SIGTERM to the main process, KillMode=mixed);
        wait for it to exit and return its exit status."""
        proc = self.processes.pop(str(port))
        proc.send_signal(sig)
        return proc.wait(timeout=60)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """``vigor-worker.service``'s ExecStart; returns once the worker says it runs jobs (its
        signal handlers are set from then on: a SIGTERM stops it gracefully)."""
        proc = self._spawn("worker", self.worker_unit, "")
        log = self.log_of("worker")
        deadline = time.monotonic() + 90
        while "Huey consumer started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vigor worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        return proc

    # --- nginx -------------------------------------------------------------------------------

    def start_nginx(self) -> None:
        """nginx with the rendered site config and snippet, unprivileged, in its own prefix."""
        self.nginx = start_nginx(self.nginx_dir, self.values)
        wait_for(
            f"{self.public_url}/api/v1/root.json",
            self.nginx,
            self.nginx_dir / "error.log",
            context=self.ssl_context(),
        )

    def nginx_log(self) -> str:
        return _tail(self.nginx_dir / "error.log", 20_000)

    def stop(self) -> None:
        """Stop nginx and every process of the site (each one this site started, by its id)."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                self.nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: the site is done
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()
        shutil.rmtree(self.nginx_dir, ignore_errors=True)


def wait_for(
    url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = 60,
    context: ssl.SSLContext | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer; the log ends:\n{_tail(log)}")
        time.sleep(0.1)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""
