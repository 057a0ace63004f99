"""Shared bench plumbing: gunicorn processes on loopback, worker memory, free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# What `vigor serve` runs (server/serving.py): gunicorn's threaded worker, which keeps a
# client's connection open between requests.
VIGOR_WORKER = "server.serving.DrainingThreadWorker"


class Gunicorn:
    """A gunicorn master serving ``app_spec`` (module:callable): sync workers, or ``threads``
    threads in each of Vigor's own worker (``vigor serve``'s, with its 8 threads)."""

    def __init__(
        self,
        app_spec: str,
        env: dict[str, str],
        workers: int = 1,
        health: str = "/readyz",
        threads: int = 1,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-k",
            "sync" if threads == 1 else VIGOR_WORKER,
            "--threads",  # always given: gunicorn.conf.py asks for threads (sync would be gthread)
            str(threads),
            "-b",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "600",
            "--log-level",
            "warning",
            app_spec,
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + health, timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"gunicorn for {app_spec} did not start") from None
                time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (VmRSS now, VmHWM peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
