"""Serving the app with gunicorn from inside the ``vigor`` command.

``vigor serve`` checks what it can in its own process (the secret, the schema), then replaces
itself (``exec``, same process id) with ``python -m server.serving``: a gunicorn master started
with ``PROMETHEUS_MULTIPROC_DIR`` set to a fresh directory *before* anything imports
``prometheus_client``, which decides at import whether metrics are shared between processes.
Every worker then counts in that directory, ``/metrics`` adds all of them up, and the master
marks each worker that exits as dead and removes the directory when it stops.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from server.config import ConfigError, Settings
from server.web.redaction import redact

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with capability tokens hidden in every access-log field (the request
    line, path, query, referrer and any header or environ value a custom format names).

    ``vigor serve`` uses it; to run gunicorn yourself, pass
    ``--logger-class server.serving.RedactingLogger``.
    """

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, which lets go of the listening socket as soon as it stops.

    On SIGTERM (a deploy, a rolling restart) gunicorn's worker stops accepting but keeps the
    listening socket open until the requests it is serving end, a multi-GB upload included:
    meanwhile the kernel still completes new connections into its queue, where they wait
    unanswered (nginx then times out). Closed at once, new connections are refused and the
    proxy sends them to another process; the requests in flight finish as before.
    """

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # stopping, not merely at its connection limit
            for listener in self.sockets:
                listener.close()


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn hook: a worker that exited no longer counts in live gauges."""
    from server.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """gunicorn hook: the master stops; its metrics directory goes with it."""
    directory = os.environ.get(METRICS_DIR)
    if directory and os.path.basename(directory).startswith(METRICS_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


METRICS_PREFIX = "vigor-metrics-"


def fresh_metrics_dir() -> str:
    """A new private directory for one server run's metric files."""
    return tempfile.mkdtemp(prefix=METRICS_PREFIX)


def gunicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """What ``vigor serve`` gives gunicorn (``gunicorn.conf.py`` gives the same by hand).

    Threaded workers: an upload of several GB takes one thread for as long as the client needs
    to send it, while the worker keeps answering checks on its other threads and keeps telling
    the arbiter it is alive (a sync worker would be killed at ``timeout`` mid-upload). On
    SIGTERM, requests in flight get ``graceful_timeout`` seconds to finish. With ``reuse_port``
    each worker listens on a socket of its own (``SO_REUSEPORT``), which the kernel gives an
    even share of new connections.
    """
    return {
        "bind": f"{host}:{port}",
        "workers": settings.workers,
        "worker_class": "server.serving.DrainingThreadWorker",
        "threads": settings.threads,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "reuse_port": settings.reuse_port,
        "accesslog": "-",
        "logger_class": "server.serving.RedactingLogger",
        "errorlog": "-",
        "loglevel": "info",
        "child_exit": "server.serving.child_exit",
        "on_exit": "server.serving.on_exit",
    }


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from server.app import create_app

        return create_app(self.settings)


def require_free_port(host: str, port: int) -> None:
    """Refuse, in one line, an address something already listens on, before gunicorn starts:
    a second server on a port taken with ``reuse_port`` would share it silently (the kernel
    would give it half of the connections), and gunicorn alone would retry for seconds, then
    fail in its workers' log lines.

    Raises:
        ConfigError: the address cannot be bound (in use, not this machine's, not allowed).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc}") from None
    with socket.socket(family, kind, proto) as probe:
        # As gunicorn binds: connections of an earlier server still closing do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            why = "another server listens there" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(f"cannot serve on {host}:{port}: {why}") from None


def _server_command(
    settings: Settings, host: str, port: int, environ: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    require_free_port(host, port)
    options = gunicorn_options(settings, host, port)
    env = {**os.environ, **(environ or {}), METRICS_DIR: fresh_metrics_dir()}
    return [sys.executable, "-m", "server.serving", json.dumps(options)], env


def serve(
    settings: Settings, host: str, port: int, environ: Mapping[str, str] | None = None
) -> None:
    """Become the gunicorn master (this process is replaced; it never returns).

    Args:
        environ: variables to set for the server, over this process's own (the settings the
            server reads are ``Settings.from_env()``'s).

    Raises:
        ConfigError: the address is taken (:func:`require_free_port`).
    """
    command, env = _server_command(settings, host, port, environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)  # noqa: S606 - this interpreter, no shell


def spawn(
    settings: Settings, host: str, port: int, environ: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The same server as :func:`serve`, as a child process (``vigor demo`` runs a worker too)."""
    command, env = _server_command(settings, host, port, environ)
    sys.stdout.flush()
    return subprocess.Popen(command, env=env)


def main(argv: list[str]) -> None:
    """``python -m server.serving OPTIONS_JSON``: run gunicorn in the foreground."""
    options = json.loads(argv[1])
    try:
        settings = Settings.from_env()
        settings.require_secret()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    _Gunicorn(settings, options).run()


if __name__ == "__main__":
    main(sys.argv)
