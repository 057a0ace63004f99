"""Serving the app with gunicorn from inside the ``vigor`` command."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from server.config import Settings
from server.web.redaction import redact


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


def serve(settings: Settings, host: str, port: int, workers: int = 2) -> None:
    """Run gunicorn in the foreground until interrupted.

    Threaded workers: an upload of several GB takes one thread for as long as the client needs
    to send it, while the worker keeps answering checks on its other threads and keeps telling
    the arbiter it is alive (a sync worker would be killed at ``timeout`` mid-upload).
    """
    _Gunicorn(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "server.serving.DrainingThreadWorker",
            "threads": 8,
            "timeout": 60,  # the worker's heartbeat, not a request's duration
            "graceful_timeout": 10,
            "accesslog": "-",
            "logger_class": "server.serving.RedactingLogger",
            "errorlog": "-",
            "loglevel": "info",
        },
    ).run()
