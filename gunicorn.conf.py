"""Settings gunicorn reads by itself when started here (``gunicorn wsgi:app``): the same as
``vigor serve`` gives it (server/serving.py), from the same ``VIGOR_*`` settings.

Its access log hides the tokens of download and set-password links, as ``vigor serve``'s does,
and its workers share their metrics through a fresh ``PROMETHEUS_MULTIPROC_DIR``, set here
before the app (and ``prometheus_client``) is imported. Options on the command line win.
"""

import os

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vigor-metrics-")

from server.config import ConfigError, Settings
from server.serving import child_exit, on_exit  # noqa: F401 - gunicorn hooks

try:
    _settings = Settings.from_env()
except ConfigError as exc:  # a bad setting: one line, not a traceback
    raise SystemExit(f"error: {exc}") from None

logger_class = "server.serving.RedactingLogger"
workers = _settings.workers
worker_class = "server.serving.DrainingThreadWorker"
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
reuse_port = _settings.reuse_port
