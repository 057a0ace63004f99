"""nginx for tests: Debian's binary as an unprivileged foreground process (one process, no
worker switching user) with its own prefix, pid, logs and temp paths, on a free loopback port,
proxying to ``upstream`` with extra ``server``-block directives."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.common.s3server import free_port

START_TIMEOUT = 15.0


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None
    )
    if found is None:
        raise RuntimeError("no nginx: run `make system-deps` (Debian's nginx package)")
    return found


class Nginx:
    def __init__(self, upstream: str, server_directives: str) -> None:
        self.upstream = upstream
        self.server_directives = server_directives
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._prefix: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Nginx:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def config(self, prefix: Path) -> str:
        temp = "\n".join(
            f"    {kind}_temp_path {prefix / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""
daemon off;
master_process off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass {self.upstream};
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
        }}
{self.server_directives}
    }}
}}
"""

    def error_log(self) -> str:
        assert self._prefix is not None
        path = Path(self._prefix.name) / "error.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        self._prefix = tempfile.TemporaryDirectory(prefix="vigor-nginx-")
        prefix = Path(self._prefix.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = prefix / "nginx.conf"
        conf.write_text(self.config(prefix))
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/nginx-probe", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # nginx answered (whatever the upstream said)
            except OSError:
                time.sleep(0.05)
        log = self.error_log()
        self.stop()
        raise RuntimeError(f"nginx did not start:\n{log[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._prefix is not None:
            self._prefix.cleanup()
            self._prefix = None
